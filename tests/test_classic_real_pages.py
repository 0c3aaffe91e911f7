"""Assembly on layout regions and OCR lines recorded from real pages of the benchmark
(bench/classic_vs_tesseract.py), where it once went wrong. The recording keeps the models' boxes
and categories; line texts are masked as "w<index>" (page numbers kept), the documents' words
staying with the documents."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.engines.classic import assemble_elements
from pipelines.layout import TextLine

RAW = Path(__file__).resolve().parent / "data" / "classic_raw"


def assembled(name: str):
    raw = json.loads((RAW / f"{name}.json").read_text())
    regions = [(tuple(r["bbox"]), r["category"], r["score"]) for r in raw["layout"]]
    lines = [TextLine(tuple(l["bbox"]), l["text"]) for l in raw["lines"]]
    return assemble_elements(regions, lines, raw["width"], raw["height"]), lines, raw


@pytest.mark.parametrize("name", sorted(p.stem for p in RAW.glob("*.json")))
def test_every_recognised_line_reaches_the_output_once(name):
    elements, lines, _ = assembled(name)
    words = [w for e in elements for w in e.text.split()]
    assert sorted(words) == sorted(w for line in lines for w in line.text.split())


def test_framed_listings_the_layout_model_calls_pictures_keep_their_text():
    # fancyvrb's manual: framed verbatim boxes; 20 of the page's 37 lines lie in Picture regions.
    elements, lines, raw = assembled("fancyvrb-frames-p8")
    pictures = [tuple(r["bbox"]) for r in raw["layout"] if r["category"] == "Picture"]
    inside = [l for l in lines if any(p[0] <= (l.box[0] + l.box[2]) / 2 <= p[2] and p[1] <= (l.box[1] + l.box[3]) / 2 <= p[3]
                                      for p in pictures)]
    assert len(inside) >= 15
    texts = " ".join(e.text for e in elements if e.category != "Picture")
    assert all(line.text in texts.split() for line in inside)


def test_a_tilted_scans_two_columns_are_read_one_after_the_other():
    # revtex's sample page, scanned look (0.7 degrees tilt): the gutter between the columns' boxes
    # narrows to 14 px. Every left-column block comes before every right-column block.
    elements, _, raw = assembled("revtex-apssamp-p2-scan")
    middle = raw["width"] / 2
    body = [e for e in elements if e.category not in ("Page-header", "Page-footer")]
    sides = ["left" if e.bbox[2] < middle else "right" for e in body]
    assert sides == sorted(sides) and sides.count("left") >= 4 and sides.count("right") >= 4


def test_a_reference_card_is_read_page_column_by_page_column_and_row_by_row():
    # Octave's reference card: three page columns of terms and descriptions whose baselines align
    # across the whole page. Reading never jumps back to an earlier page column, and inside a page
    # column a term comes before its description on the same row.
    elements, _, raw = assembled("octave-refcard-a4-p2")
    third = raw["width"] / 3
    body = [e for e in elements if e.category not in ("Page-header", "Page-footer")]
    page_columns = [int(((e.bbox[0] + e.bbox[2]) / 2) // third) for e in body]
    assert page_columns == sorted(page_columns)
    same_row = [(a, b) for a, b in zip(body, body[1:]) if abs(a.bbox[1] - b.bbox[1]) < 8
                and int(a.bbox[0] // third) == int(b.bbox[0] // third) and (a.bbox[2] <= b.bbox[0] or b.bbox[2] <= a.bbox[0])]
    left_to_right = sum(a.bbox[0] < b.bbox[0] for a, b in same_row)
    # (Not all: the layout model merged a few terms of different rows into one region.)
    assert len(same_row) >= 40 and left_to_right >= 0.95 * len(same_row), (left_to_right, len(same_row))


def test_the_three_parts_of_a_slides_running_head_are_headers_left_to_right():
    elements, _, _ = assembled("mom-slide-demo-p6")
    heads = [e for e in elements if e.category == "Page-header"]
    assert len(heads) == 3 and [e.bbox[0] for e in heads] == sorted(e.bbox[0] for e in heads)
    assert [e.text for e in elements if e.category == "Page-footer"] == ["1"]
