"""Table structure: TEDS of the tables `classic` writes, against hand-written HTML ground truth.

The pages are table pages of bench/classic_vs_tesseract.py (rendered at 200 dpi into
bench/.cache/render/ by that script; run it, or its --fetch and one run, first). Their ground
truth is in bench/table_truth/<page>.html: every table on the page transcribed by hand from the
render, <th>/<td> cells with rowspan/colspan.

TEDS (tree-edit-distance similarity, Zhong et al. 2020): 1 - TED(prediction, truth) / max(nodes),
on the trees table > tr > td/th, where renaming a cell costs the normalised edit distance of the
two cells' texts (1 if their tags or spans differ), and inserting or deleting a node costs 1.
TEDS-S ignores the text (structure only). Each truth table is paired with the predicted table that
scores best against it (each predicted table used once); a truth table left without one scores 0
(a table the layout model did not find). In the same run, the tables are built again with rows by
position only (no rules), the way classic built them before it read the rules.

    pip install -r bench/requirements.txt
    python bench/table_structure.py          # writes bench/results/table_structure.{json,md}
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
from pipelines.evaluation.teds import match_tables, table_trees  # noqa: E402
TRUTH = BENCH / "table_truth"
RENDERS = BENCH / ".cache" / "render"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    from pipelines import load_pipeline

    import pipelines.engines.classic as classic

    pipeline = load_pipeline("classic")
    real_rules = classic.horizontal_rules
    pages = []
    for truth_file in sorted(TRUTH.glob("*.html")):
        render = RENDERS / f"{truth_file.stem}.png"
        if not render.is_file():
            sys.exit(f"{render} is missing: run bench/classic_vs_tesseract.py first (it renders the pages)")
        truths = table_trees(truth_file.read_text(encoding="utf-8"))
        page = {"page": truth_file.stem, "truth_tables": len(truths)}
        # Side by side: rows from the table's rules (what classic does), and rows by position only.
        for variant, rules in (("", real_rules), ("_no_rules", lambda bgr, box: [])):
            classic.horizontal_rules = rules
            result = pipeline.parse_document(render, "layout_all").pages[0]
            predicted = table_trees("".join(e.text for e in result.elements if e.category == "Table"))
            page[f"predicted_tables{variant}"] = len(predicted)
            page[f"tables{variant}"] = match_tables(predicted, truths)
        classic.horizontal_rules = real_rules
        pages.append(page)
        print(json.dumps(pages[-1]), flush=True)
    summary = {}
    for variant in ("", "_no_rules"):
        every = [t for p in pages for t in p[f"tables{variant}"]]
        summary |= {"tables": len(every), f"mean_teds{variant}": sum(t["teds"] for t in every) / len(every),
                    f"mean_teds_s{variant}": sum(t["teds_s"] for t in every) / len(every)}
    machine = {"nproc": os.cpu_count(), "python": platform.python_version(), "system": platform.system(),
               "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    report = {"machine": machine, "summary": summary, "pages": pages}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table_structure.json").write_text(json.dumps(report, indent=2))
    lines = ["# Table structure: TEDS of classic's tables", "",
             "Rows from the tables' rules (classic) and, in the same run, rows by position only.", "",
             "| page | truth tables | predicted tables | TEDS per table | TEDS-S per table | TEDS, rows by position |",
             "|---|---|---|---|---|---|"]
    for p in pages:
        lines.append(f"| {p['page']} | {p['truth_tables']} | {p['predicted_tables']} | "
                     + ", ".join(f"{t['teds']:.3f}" for t in p["tables"]) + " | "
                     + ", ".join(f"{t['teds_s']:.3f}" for t in p["tables"]) + " | "
                     + ", ".join(f"{t['teds']:.3f}" for t in p["tables_no_rules"]) + " |")
    lines += ["", f"Mean over {summary['tables']} tables: TEDS {summary['mean_teds']:.3f} (rows by position only: "
              f"{summary['mean_teds_no_rules']:.3f}), TEDS-S {summary['mean_teds_s']:.3f} "
              f"({summary['mean_teds_s_no_rules']:.3f}).", ""]
    (args.out / "table_structure.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
