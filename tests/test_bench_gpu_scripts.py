"""The GPU check scripts run end to end (here on the CPU, on toy sizes), so that a GPU session
spends its minutes measuring, not finding a typo."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def run(script: str, *args: str) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_cuda_smoke_parses_the_pdf_with_each_decoding(tmp_path):
    run("cuda_smoke.py", "--models", "qwen2_5_vl_3b", "--out", str(tmp_path), "--name", "smoke")
    rows = json.loads((tmp_path / "smoke.json").read_text())
    assert [(r["model"], r["decoding"]) for r in rows] == [("qwen2_5_vl_3b", "generate"), ("qwen2_5_vl_3b", "fast")]
    for row in rows:
        assert "error" not in row, row.get("trace")
        assert (row["device"], row["pages"], row["failed"]) == ("cpu", 2, [])
        assert [t["generated"] for t in row["tokens"]] == [48, 48]
    assert rows[0]["raw"] == rows[1]["raw"]  # fp32: the fast path writes what generate writes


def test_generate_overhead_measures_four_ways(tmp_path):
    run("generate_overhead.py", "--tokens", "6", "--out", str(tmp_path), "--name", "overhead")
    saved = json.loads((tmp_path / "overhead.json").read_text())
    assert list(saved["ms_per_token"]) == ["project_generate", "plain_generate", "plain_generate_no_mask",
                                          "bare_loop_sync"]
    # A difference of two timings: on a loaded machine with 6 tokens it can even come out negative,
    # so only its presence is checked here (speed is for the GPU run to measure).
    assert all(isinstance(value, float) and math.isfinite(value) for value in saved["ms_per_token"].values())
    assert saved["tokens"] == 6 and saved["model"] == "dots_ocr"


def test_the_committed_gpu_run_covers_what_the_docs_say():
    from pipelines import list_models

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import cuda_smoke
    finally:
        sys.path.remove(str(REPO / "bench"))
    local = {s.key for s in list_models() if s.engine == "transformers"}
    assert set(cuda_smoke.KEYS) == local  # the next run covers every model the transformers engine runs
    smoke = json.loads((REPO / "bench/results/cuda_smoke_h200.json").read_text())
    run = {r["model"] for r in smoke}
    assert run == local - {"deepseek_ocr2"} and len(run) == 9 and len(local) == 10
    docs = " ".join((REPO / "docs" / "benchmarks.md").read_text().split())
    assert "9 of the 10 transformers models load and parse on the GPU" in docs and "but DeepSeek-OCR-2" in docs
    assert all(r["device"] == "cuda" and r["dtype"] == "torch.bfloat16" and r["failed"] == [] and r["pages"] == 2
               for r in smoke)
