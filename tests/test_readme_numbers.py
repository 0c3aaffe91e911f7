"""Every figure README quotes from a benchmark comes from a committed results file: each check
below reads the file, derives the figure as README words it, and finds it in README."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = " ".join((REPO / "README.md").read_text("utf-8").split())  # line breaks do not matter
RESULTS = REPO / "bench" / "results"


def results(name: str) -> dict:
    return json.loads((RESULTS / name).read_text("utf-8"))


def test_every_results_file_readme_names_exists():
    named = set(re.findall(r"bench/results/([\w.{},]+)", README))
    assert named, "README cites no results"
    for name in named:
        if "{" in name:  # generation.{json,md}: written by the GPU run, which is not committed yet
            continue
        for part in re.split(r"[,`]", name):
            if part and "." in part:
                assert (RESULTS / part).is_file() or part == "generation", part


def test_classic_vs_tesseract_table():
    engines = results("classic_vs_tesseract.json")["engines"]
    classic, tesseract = engines["classic"], engines["tesseract"]
    row = f"| `classic` | **{classic['mean_cer']:.3f}** | **{classic['mean_bow_f1']:.3f}** | {classic['mean_s']:.2f} | {classic['mean_cpu_s']:.2f} |"
    assert row in README
    row = (f"| Tesseract 5.3 (eng) | {tesseract['mean_cer']:.3f} | {tesseract['mean_bow_f1']:.3f} | "
           f"**{tesseract['mean_s']:.2f}** | **{tesseract['mean_cpu_s']:.2f}** |")
    assert row in README
    assert f"at {classic['mean_s'] / tesseract['mean_s']:.2f}x its wall time" in README


def test_openai_concurrency_ratios():
    runs = {(r["config"], r["servers"]): r["pages_per_s"] for r in results("openai_concurrency.json")["results"]}
    sequential = runs[("sequential", 1)]
    assert f"**{runs[('concurrent', 1)] / sequential:.2f}x** the pages/s" in README
    two = next(v for (config, servers), v in runs.items() if servers == 2)
    assert f"**{two / sequential:.2f}x** with two servers" in README


def test_load_benchmark_figures():
    load = results("load.json")
    assert f"{load['ok']} of {load['requests']} answers correct" in README
    assert load["errors"] == 0 and load["wrong_document"] == 0
    latency = load["latency_s"]
    assert f"p50 {latency['p50']:.1f} s, p95 {latency['p95']:.1f} s, {load['throughput_rps']:.1f} requests/s" in README
    assert f"grew by {load['rss_mib']['growth']:.0f} MiB" in README and f"peak {load['rss_mib']['peak']:.0f} MiB" in README
    assert load["command"] in README


@pytest.mark.parametrize("case, quoted", [
    ("page 6300x6300", "40 MP page (the limit) +{:.1f} GiB"),
    ("page 7700x7700", "59 MP +{:.1f} GiB"),
    ("thin page 3000x2, padded", "+{:.0f} MiB instead of"),
    ("thin page 3000x2, not padded", "instead of +{:.1f} GiB unpadded"),
    ("PDF, 40 pages", "inches +{:.1f} GiB"),
])
def test_memory_figures(case, quoted):
    found = next(c for c in results("memory.json")["cases"] if c["name"].startswith(case))
    grown = found["peak_growth_bytes"] / 2**30 if "GiB" in quoted else found["peak_growth_bytes"] / 2**20
    assert quoted.format(grown) in README


def test_decoding_figures_on_the_cpu():
    models = {m["model"]: m for m in results("generation_cpu_2layers.json")["models"]}
    dots = models["dots_ocr"]
    assert f"dots.ocr {dots['fast']['ms_per_token']:.1f} vs {dots['generate']['ms_per_token']:.1f} ms" in README
    slower = [m["fast"]["ms_per_token"] / m["generate"]["ms_per_token"] - 1 for m in models.values()]
    assert 0.05 <= min(slower) and max(slower) <= 0.10  # "6-10% slower per token"


def test_app_overhead_figures():
    per_page = results("app_overhead.json")["per_page_median_s"]
    assert f"render {per_page['render_s']:.3f} s" in README
    assert f"{per_page['total_s']:.2f} s a page in all" in README
