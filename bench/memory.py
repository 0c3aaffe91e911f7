"""Peak memory of one request through the `classic` engine, each case in a fresh process.

For each case a child process loads the engine, then parses one generated page and reports how
much its peak resident memory (ru_maxrss) grew: the cost of the request itself, not of the models.
Pages are full of text (the OCR's memory grows with the lines it reads). Cases: large pages at and above the 40 MP page limit, a thin page with and without the padding
the engine applies before OCR, and a 40-page PDF of 200x200-inch pages (rendered one at a time).

    python bench/memory.py          # writes bench/results/memory.{json,md}
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

CHILD = r"""
import io, json, resource, sys, time
from PIL import Image, ImageDraw
sys.path.insert(0, {repo!r})
import pipelines.engines.classic as classic
from pipelines import load_pipeline
case = json.loads(sys.argv[1])
if case.get("no_padding"):
    classic._padded_for_ocr = lambda bgr: bgr  # what RapidOCR alone does with a thin page
pipeline = load_pipeline("classic")
pipeline.load()
if case["kind"] == "image":
    width, height = case["size"]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    size = max(8, min(60, height // 4))  # dense text: lines 1.6x the font size apart, full width
    line = "The quick brown fox jumps over the lazy dog 0123456789. " * (width // (size * 20) + 1)
    for y in range(size // 2, height - size, int(size * 1.6)):
        draw.text((size, y), line, fill="black", font_size=size)
    buffer = io.BytesIO(); image.save(buffer, "PNG"); data = buffer.getvalue(); del image, draw
    source, options = data, {{}}
    if case.get("direct"):  # straight into the engine, past the intake's shape check
        from pipelines.documents import Page
        from pipelines.engines.base import ParseOptions
        page = Page(Image.open(io.BytesIO(data)).convert("RGB"), 0)
else:
    import pypdfium2 as pdfium
    pdf = pdfium.PdfDocument.new()
    for _ in range(case["pages"]):
        pdf.new_page(14400, 14400)
    buffer = io.BytesIO(); pdf.save(buffer); pdf.close(); source = buffer.getvalue()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if case.get("direct"):
    pipeline.engine.parse_page(page, "layout_all", ParseOptions())
else:
    from pipelines.documents import Limits
    limits = Limits(max_pixels=case.get("max_pixels", Limits().max_pixels))
    pipeline.parse_document(source, case.get("mode", "layout_all"), dpi=200, limits=limits)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({{"peak_growth_bytes": grown, "seconds": time.perf_counter() - started}}))
"""

# The OCR settings side by side on the example paper (2 pages at 200 dpi, 3 rounds): seconds a page
# and peak growth, with the earlier settings (memory arena on, 6 lines a batch) and today's.
SETTINGS_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from pipelines.documents import load_document
from pipelines.engines.base import ParseOptions
from pipelines.engines.classic import ClassicEngine
arena, batch = json.loads(sys.argv[1])
engine = ClassicEngine(ocr_params={{"EngineConfig.onnxruntime.enable_cpu_mem_arena": arena, "Rec.rec_batch_num": batch}})
engine.load()
document = load_document({repo!r} + "/assets/paper_two_column.pdf")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seconds = []
for _ in range(3):
    for page in document.pages:
        started = time.perf_counter()
        engine.parse_page(page, "layout_all", ParseOptions())
        seconds.append(time.perf_counter() - started)
seconds.sort()
print(json.dumps({{"arena": arena, "rec_batch": batch, "page_s_min": seconds[0], "page_s_median": seconds[len(seconds) // 2],
                  "peak_growth_bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024}}))
"""

CASES = [
    {"name": "page 4500x3200 (14 MP)", "kind": "image", "size": [4500, 3200]},
    {"name": "page 6300x6300 (40 MP, the page limit)", "kind": "image", "size": [6300, 6300]},
    {"name": "page 7700x7700 (59 MP, over the limit, allowed for this run)", "kind": "image", "size": [7700, 7700],
     "max_pixels": 70_000_000},
    {"name": "thin page 3000x2, padded (direct)", "kind": "image", "size": [3000, 2], "direct": True},
    {"name": "thin page 3000x2, not padded (direct)", "kind": "image", "size": [3000, 2], "direct": True,
     "no_padding": True},
    {"name": "PDF, 40 pages of 200x200 in (4500x4500 px each), layout only", "kind": "pdf", "pages": 40,
     "mode": "layout_only"},
]


def run_case(case: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO)), json.dumps(case)],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {**case, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return {**case, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--only", action="append", default=[], help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or any(o in c["name"] for o in args.only)]
    results = {"machine": {"cpus": os.cpu_count(), "system": platform.system(), "python": platform.python_version()},
               "cases": [run_case(c) for c in cases], "ocr_settings": []}
    if not args.only:
        for _ in range(2):  # alternated, twice: the machine is noisy
            for settings in ([True, 6], [False, 3]):
                done = subprocess.run([sys.executable, "-c", SETTINGS_CHILD.format(repo=str(REPO)), json.dumps(settings)],
                                      capture_output=True, text=True, timeout=1800, check=True)
                results["ocr_settings"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = ["| case | peak memory growth | seconds |", "|---|---|---|"]
    for case in results["cases"]:
        if "error" in case:
            rows.append(f"| {case['name']} | error: {case['error']} | |")
        else:
            rows.append(f"| {case['name']} | {case['peak_growth_bytes'] / 2**20:,.0f} MiB | {case['seconds']:.1f} |")
    if results["ocr_settings"]:
        rows += ["", "OCR settings on `assets/paper_two_column.pdf` (2 pages, 200 dpi, 3 rounds each, runs alternated):", "",
                 "| memory arena | lines per recognition batch | page s (min) | page s (median) | peak memory growth |",
                 "|---|---|---|---|---|"]
        for run in results["ocr_settings"]:
            rows.append(f"| {'on' if run['arena'] else 'off'} | {run['rec_batch']} | {run['page_s_min']:.2f} | "
                        f"{run['page_s_median']:.2f} | {run['peak_growth_bytes'] / 2**20:,.0f} MiB |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(results, indent=2) + "\n")
    table = (f"# Peak memory of one request (`classic`, each case in a fresh process)\n\n"
             f"Machine: {results['machine']['cpus']} CPUs. Command: `python bench/memory.py`\n\n" + "\n".join(rows) + "\n")
    (out / "memory.md").write_text(table)
    print(table)
    return results


if __name__ == "__main__":
    main()
