"""The Parse tab's own work per page around the model, timed step by step (no model: the page's
elements come from one `classic` parse done first and untimed).

Steps per page, as ui/parse_tab.py runs them: render the PDF page, save the original PNG, draw
the boxes once and save the annotated PNG, then once per document the zip (annotated PNGs stored
as they are, not drawn again) and the first page's views (Markdown with pictures as data URLs).

    python bench/app_overhead.py       # writes bench/results/app_overhead.{json,md}
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines import load_document, load_pipeline  # noqa: E402
from ui.parse_tab import _finished_views, _save_page  # noqa: E402

SOURCE = REPO / "assets" / "paper_two_column.pdf"


def main(repeat: int = 5) -> dict:
    result = load_pipeline("classic").parse_document(str(SOURCE), "layout_all")
    rounds = []
    for _ in range(repeat):
        work = Path(tempfile.mkdtemp())
        document = load_document(str(SOURCE))
        timing = {"render_s": 0.0, "save_pages_s": 0.0}
        saved = {}
        for page, page_result in zip(document.pages, result.pages):
            started = time.perf_counter()
            image = page.image
            timing["render_s"] += time.perf_counter() - started
            started = time.perf_counter()
            saved[page_result.page] = _save_page(work, image, page_result)
            timing["save_pages_s"] += time.perf_counter() - started
            page.release()
        started = time.perf_counter()
        _finished_views(work, saved, result, False, "digest")
        timing["zip_and_views_s"] = time.perf_counter() - started
        rounds.append(timing)
    pages = len(result.pages)
    median = {key: statistics.median(r[key] for r in rounds) / pages for key in rounds[0]}
    median["total_s"] = sum(median.values())
    report = {"source": SOURCE.name, "pages": pages, "elements": sum(len(p.elements) for p in result.pages),
              "repeat": repeat, "cpus": os.cpu_count(), "per_page_median_s": median}
    out = REPO / "bench" / "results"
    (out / "app_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    table = ("# The Parse tab's own work per page (no model)\n\n"
             f"`{SOURCE.name}`, {pages} pages at 200 dpi, {report['elements']} elements, median of {repeat} rounds, "
             f"{report['cpus']} CPUs. Command: `python bench/app_overhead.py`\n\n"
             "| render | save original + draw and save annotated | zip + first page's views | total per page |\n"
             "|---|---|---|---|\n"
             f"| {median['render_s']:.3f} s | {median['save_pages_s']:.3f} s | {median['zip_and_views_s']:.3f} s | "
             f"{median['total_s']:.3f} s |\n")
    (out / "app_overhead.md").write_text(table)
    print(table)
    return report


if __name__ == "__main__":
    main()
