"""The load benchmark (bench/load.py) end to end: it starts app.py, two clients each read their own
generated page through POST /analyze_layout, and the report says so; plus its answer check."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent


def _load_bench():
    # Loaded by path under its own name: "load" alone would be too easy to shadow.
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def test_answer_check_wants_its_own_code_and_no_other():
    codes = ["DOC 7356 ALPHA", "DOC 4545 BRAVO"]
    assert bench.check_answer("# doc 7356\n\nALPHA", codes[0], codes[1:]) == "ok"  # OCR spacing is ignored
    assert bench.check_answer("DOC 4545 BRAVO", codes[0], codes[1:]) == "wrong_document"
    assert bench.check_answer("DOC 7356 ALPHA DOC 4545 BRAVO", codes[0], codes[1:]) == "wrong_document"
    assert bench.check_answer("", codes[0], codes[1:]) == "wrong_document"


def test_documents_are_distinct(tmp_path):
    documents = bench.make_documents(6, tmp_path)
    assert len({code for _, code in documents}) == 6
    assert [p.suffix for p, _ in documents] == [".png"] * 4 + [".pdf"] * 2
    assert len({p.read_bytes() for p, _ in documents}) == 6


def test_two_clients_each_get_their_own_answer(tmp_path):
    report = bench.main(["--clients", "2", "--requests", "1", "--duration-s", "60", "--out", str(tmp_path)])
    assert report["warmup_statuses"] == [200]
    assert report["requests"] == 2 and report["ok"] == 2
    assert report["errors"] == 0, report["problems"]
    assert report["wrong_document"] == 0, report["problems"]
    assert report["refused_backpressure"] == 0
    latency = report["latency_s"]
    assert len(latency["all"]) == 2 and all(value > 0 for value in latency["all"])
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]
    assert report["throughput_rps"] > 0
    rss = report["rss_mib"]
    assert rss["before"] > 0 and rss["peak"] >= rss["before"] and rss["after"] > 0
    assert json.loads((tmp_path / "load.json").read_text())["requests"] == 2
    table = (tmp_path / "load.md").read_text()
    assert "| requests | ok | errors | refused (backpressure) | wrong document |" in table
    assert "--clients 2 --requests 1" in table
