"""Every figure README and docs/ quote from a benchmark comes from a committed results file: each
check below reads the file, derives the figure as the text words it, and finds it there (README's
headlines in README itself; the full figures in docs/benchmarks.md and the other docs)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
def joined(*paths: Path) -> str:
    return " ".join(" ".join(p.read_text("utf-8").split()) for p in paths)  # line breaks do not matter


README_ONLY = joined(REPO / "README.md")
README = joined(REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
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
    report = results("classic_vs_tesseract.json")
    classic, tesseract = report["engines"]["classic"], report["engines"]["tesseract"]
    assert (f"| `classic` | **{classic['mean_cer']:.3f}** | **{classic['mean_bow_f1']:.3f}** | "
            f"**{classic['mean_s']:.2f}** | {classic['mean_cpu_s']:.2f} |") in README
    assert (f"| Tesseract 5.3 (eng) | {tesseract['mean_cer']:.3f} | {tesseract['mean_bow_f1']:.3f} | "
            f"{tesseract['mean_s']:.2f} | **{tesseract['mean_cpu_s']:.2f}** |") in README
    assert f"{len(report['pages'])} pages" in README
    for cls, row in report["by_class"].items():
        assert (f"| {CLASS_NAMES[cls]} | {row['pages']} | {row['mean_cer_classic']:.3f} | "
                f"{row['mean_cer_tesseract']:.3f} | {row['mean_s_classic']:.2f} | {row['mean_s_tesseract']:.2f} |") in README
    versus = report["classic_vs_tesseract"]
    assert f"with {versus['cer_ratio_of_means']:.2f}x Tesseract's mean error rate" in README
    assert f"at {classic['mean_s'] / tesseract['mean_s']:.2f}x its wall time" in README
    assert f"at most Tesseract's on {versus['classic_better_or_tied']} of {versus['pages']} pages" in README
    assert versus["worse_than_2x_tesseract"] == [] and "no page is worse than twice" in README


CLASS_NAMES = {"two-column": "two-column", "multi-column": "multi-column (reference cards)", "option-list": "option lists",
               "form": "forms", "ruled-table": "ruled tables", "unruled-table": "unruled tables", "code-box": "code boxes",
               "side-by-side": "side-by-side", "footnotes": "footnotes", "slides": "slides", "prose": "prose",
               "scanned": "scanned look"}


def test_table_structure_figures():
    summary = results("table_structure.json")["summary"]
    assert f"Mean TEDS **{summary['mean_teds']:.3f}**" in README
    assert f"(TEDS-S, structure only, {summary['mean_teds_s']:.3f})" in README
    assert f"against {summary['mean_teds_no_rules']:.3f} in the same run" in README
    assert f"{summary['tables']} tables" in README


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


def test_install_size_figures_in_readme():
    report = results("install_size.json")
    cpu, full = report["installs"]["cpu"], report["installs"]["full"]
    assert cpu["classic_parses_invoice"] and full["classic_parses_invoice"]
    assert not cpu["torch_imports"] and full["torch_imports"]
    assert (f"puts **{cpu['venv_mb']:,} MB** ({cpu['packages']} packages) into the virtualenv in {cpu['install_s']} s, "
            f"against **{full['venv_mb']:,} MB** ({full['packages']} packages) in {full['install_s']} s") in README_ONLY
    ratios = report["cpu_vs_full"]
    assert f"{ratios['size_ratio']:.2f}x the size, {ratios['time_ratio']:.2f}x the time" in README_ONLY
    assert f"the CPU install is {cpu['venv_mb']:,} MB against {full['venv_mb']:,} MB" in README_ONLY
    assert (f"{cpu['venv_mb']:,} MB and {cpu['packages']} packages in {cpu['install_s']} s, against "
            f"{full['venv_mb']:,} MB and {full['packages']} packages in {full['install_s']} s") in README  # docs/benchmarks.md


def test_readme_headline_of_classic_vs_tesseract():
    report = results("classic_vs_tesseract.json")
    classic, tesseract = report["engines"]["classic"], report["engines"]["tesseract"]
    assert (f"on {len(report['pages'])} real PDF pages from Debian packages") in README_ONLY
    assert (f"mean character error rate **{classic['mean_cer']:.3f}** against {tesseract['mean_cer']:.3f}, "
            f"at {classic['mean_s']:.2f} s a page against {tesseract['mean_s']:.2f} s") in README_ONLY


def test_readme_headline_of_the_example_set_is_the_row_ci_checks():
    # tests/test_evaluation.py checks this row of docs/evaluation.md against what it measures.
    row = next(line for line in (REPO / "docs" / "evaluation.md").read_text().splitlines()
               if line.startswith("| `classic:layout_all` |"))
    pass_rate = row.split("|")[3].strip()
    assert f"`classic:layout_all` passes {pass_rate}" in README_ONLY


def test_gpu_run_figures():
    run = results("generation_h200.json")
    assert run["device"] == "NVIDIA H200 (cuda)"
    dots = run["models"][0]
    generate, fast = dots["generate"], dots["fast"]
    assert (f"| `generate` | {generate['prefill_s']:.3f} | {generate['ms_per_token']:.2f} | {generate['page_s']:.2f} | "
            f"{generate['peak_gib']:.2f} | – |") in README
    assert (f"| fast path (`torch.compile`) | {fast['prefill_s']:.3f} | {fast['ms_per_token']:.2f} | {fast['page_s']:.2f} | "
            f"{fast['peak_gib']:.2f} | {fast['first_call_s']:.1f} |") in README
    ratio = f"{generate['page_s'] / fast['page_s']:.1f}x"
    assert f"**{ratio}**" in README_ONLY and f"in {fast['page_s']:.2f} s, against {generate['page_s']:.2f} s" in README_ONLY
    assert f"compiling for {fast['first_call_s']:.0f} s" in README and f"after {fast['first_call_s']:.0f} s" in README_ONLY
    assert f"its {len(fast['warm_up_shapes'])} warm-up shapes" in README
    assert f"first differed at token {dots['divergence']['fast_vs_generate_batch1']}" in README
    assert dots["skipped"] == ["CUDA graphs", "batch 1", "batch 8", "batch 32", "job"]
    overhead = results("generate_overhead_h200.json")
    ms = overhead["ms_per_token"]
    assert overhead["cudnn_attention"] is True and overhead["tokens"] == 80
    assert (f"**{ms['project_generate']:.2f} ms/token**" in README
            and f"took {ms['plain_generate']:.1f}, and a bare loop of forward calls {ms['bare_loop_sync']:.2f}" in README)


def test_bf16_divergence_on_the_cpu():
    run = {m["model"]: m for m in results("generation_cpu_2layers_bf16.json")["models"]}
    assert all(m["dtype"] == "bfloat16" for m in run.values())
    assert run["qwen2_vl_2b"]["divergence"]["fast_vs_generate_batch1"] is None
    assert run["qwen3_vl_2b"]["divergence"]["fast_vs_generate_batch1"] is None
    dots = run["dots_ocr"]["divergence"]
    tie = dots["near_tie"]
    assert f"dots.ocr split at token {dots['fast_vs_generate_batch1']}" in README
    assert f"top two logits were {tie['top2_gap']:.4f} apart: **{tie['gap_in_spacings']:.1f}x**" in README
