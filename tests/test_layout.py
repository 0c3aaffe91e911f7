"""Reading order and grouping of text lines."""
from __future__ import annotations

import html

from pipelines.layout import (
    TextLine, assign_lines, join_lines, lines_to_table_html, reading_order, split_list_items, split_text_blocks,
)


def test_single_column_is_top_to_bottom():
    boxes = [(100, 300, 900, 350), (100, 100, 900, 150), (100, 200, 900, 250)]
    assert reading_order(boxes) == [1, 2, 0]


def test_two_columns_with_full_width_title_and_footer():
    boxes = {
        "title": (100, 50, 1100, 100),
        "left1": (100, 150, 580, 400), "left2": (100, 420, 580, 700),
        "right1": (620, 150, 1100, 300), "right2": (620, 320, 1100, 700),
        "wide_table": (100, 750, 1100, 900),
        "left3": (100, 950, 580, 1100), "right3": (620, 950, 1100, 1100),
        "footer": (500, 1150, 700, 1180),
    }
    names = list(boxes)
    order = [names[i] for i in reading_order(list(boxes.values()))]
    assert order == ["title", "left1", "left2", "right1", "right2", "wide_table", "left3", "right3", "footer"]


def test_columns_with_coincident_gaps_are_not_interleaved():
    # Paragraph gaps at the same height in both columns must not make the order zig-zag.
    boxes = [(100, 100, 500, 300), (600, 100, 1000, 300), (100, 320, 500, 500), (600, 320, 1000, 500)]
    assert reading_order(boxes) == [0, 2, 1, 3]


def test_assign_lines_uses_largest_overlap():
    regions = [(0, 0, 100, 100), (0, 90, 100, 200)]
    lines = [TextLine((10, 10, 90, 30), "a"), TextLine((10, 85, 90, 115), "b"), TextLine((300, 0, 400, 20), "c")]
    assert assign_lines(regions, lines) == [0, 1, None]


def test_join_lines_orders_rows_and_handles_cjk():
    lines = [TextLine((200, 0, 300, 20), "world"), TextLine((0, 0, 150, 20), "hello"),
             TextLine((0, 30, 100, 50), "again")]
    assert join_lines(lines) == "hello world again"
    assert join_lines([TextLine((0, 0, 50, 20), "你好"), TextLine((0, 30, 50, 50), "世界")]) == "你好世界"


def test_split_text_blocks_by_gap_and_column():
    lines = [TextLine((0, 0, 100, 20), "a1"), TextLine((0, 25, 100, 45), "a2"),
             TextLine((0, 200, 100, 220), "b1"), TextLine((400, 0, 500, 20), "c1")]
    blocks = split_text_blocks(lines)
    assert [[l.text for l in block] for block in blocks] == [["a1", "a2"], ["b1"], ["c1"]]


def test_table_html_from_grid_of_lines():
    cells = [("Name", 0, 0), ("Qty", 200, 0), ("Apple", 0, 40), ("3", 200, 40), ("<b>", 0, 80), ("10", 200, 80)]
    lines = [TextLine((x, y, x + 60, y + 20), text) for text, x, y in cells]
    assert lines_to_table_html(lines, html.escape) == (
        "<table><tr><td>Name</td><td>Qty</td></tr><tr><td>Apple</td><td>3</td></tr>"
        "<tr><td>&lt;b&gt;</td><td>10</td></tr></table>"
    )


def test_block_beside_but_above_others_is_not_a_column():
    # A centred author line above left-aligned headings: no vertical overlap, so no columns.
    boxes = [(100, 50, 1100, 100), (600, 150, 900, 200), (100, 250, 400, 280), (100, 300, 350, 330)]
    assert reading_order(boxes) == [0, 1, 2, 3]


def test_columns_continue_across_a_horizontal_gap():
    # Without a full-width separator, a column runs on below a gap before the next column starts.
    boxes = [(100, 100, 500, 300), (600, 100, 1000, 250), (100, 600, 500, 800), (600, 620, 1000, 800)]
    assert reading_order(boxes) == [0, 2, 1, 3]


def test_bulleted_and_numbered_rows_split_into_items():
    lines = [TextLine((0, 0, 300, 20), "• first point that"), TextLine((20, 25, 300, 45), "wraps onto a second row"),
             TextLine((0, 50, 300, 70), "• second point"), TextLine((0, 75, 300, 95), "1. numbered too")]
    items = split_list_items(lines)
    assert [[l.text for l in item] for item in items] == [
        ["• first point that", "wraps onto a second row"], ["• second point"], ["1. numbered too"]]


def test_prose_is_not_a_list():
    lines = [TextLine((0, 0, 300, 20), "A sentence that starts a paragraph"),
             TextLine((0, 25, 300, 45), "- and a dash later does not make a list")]
    assert split_list_items(lines) is None
    assert split_list_items([TextLine((0, 0, 300, 20), "• only one bullet")]) is None


def test_terms_and_descriptions_are_read_row_by_row():
    # An option list: short terms on the left, descriptions (one wrapping) on the right.
    boxes = {
        "-v": (100, 100, 160, 125), "verbose": (400, 100, 1100, 125),
        "--output FILE": (100, 140, 330, 165), "output1": (400, 140, 1100, 165), "output2": (400, 170, 900, 195),
        "-q": (100, 210, 150, 235), "quiet": (400, 210, 800, 235),
    }
    names = list(boxes)
    assert [names[i] for i in reading_order(list(boxes.values()))] == names


def test_key_value_form_with_keys_wider_than_values_reads_by_rows():
    boxes = {"Date of birth:": (100, 100, 420, 130), "12 May 1980": (460, 100, 700, 130),
             "Name:": (100, 150, 220, 180), "Ann Lee": (460, 150, 640, 180),
             "Place of birth:": (100, 200, 430, 230), "Oslo": (460, 200, 560, 230),
             "Address:": (100, 250, 290, 280), "1 Long Road": (460, 250, 690, 280)}
    names = list(boxes)
    assert [names[i] for i in reading_order(list(boxes.values()))] == names


def test_aligned_lines_of_two_prose_columns_are_read_column_by_column():
    # Typeset two-column prose: the lines of both columns share baselines, but each column's lines
    # run to its right edge (the last line of a paragraph is shorter).
    left = [(100, 100 + 40 * row, 580 if row != 3 else 400, 130 + 40 * row) for row in range(5)]
    right = [(640, 100 + 40 * row, 1120 if row != 2 else 900, 130 + 40 * row) for row in range(5)]
    assert reading_order(left + right) == list(range(10))


def test_a_reference_card_of_three_columns_of_terms():
    # Three columns, each of terms and descriptions: rows inside a column, columns left to right.
    boxes = []
    for column in range(3):
        x = 50 + 400 * column
        for row in range(4):
            y = 100 + 40 * row
            boxes += [(x, y, x + 40 + 15 * row, y + 25), (x + 120, y, x + 370, y + 25)]
    assert reading_order(boxes) == list(range(24))


def test_page_columns_of_terms_whose_rows_align_across_the_page_stay_columns():
    # A reference card: three page columns, each of terms and descriptions, with baselines shared
    # across the whole page: rows are read inside each page column, never across the page.
    boxes = []
    for column in range(3):
        x = 60 + 780 * column
        for row in range(5):
            y = 100 + 30 * row
            boxes += [(x, y, x + 60 + 20 * (row % 3), y + 25), (x + 210, y, x + 420 + 40 * (row % 4), y + 25)]
    assert reading_order(boxes) == list(range(30))


def test_a_line_taller_than_its_tight_one_line_region_belongs_to_it():
    # The layout model's box hugs "Header left"; the recogniser's line box has a margin around it.
    regions = [(99, 101, 264, 125), (600, 100, 900, 400)]
    lines = [TextLine((94, 89, 273, 135), "Header left"), TextLine((950, 100, 1000, 120), "outside")]
    assert assign_lines(regions, lines) == [0, None]


def test_a_heading_just_above_a_tall_paragraph_comes_first():
    # Tops 54 px apart: far for a 40 px heading, though little beside a 343 px paragraph.
    boxes = [(241, 274, 1456, 1267), (244, 1348, 1456, 1691), (246, 1294, 984, 1334), (246, 1719, 895, 1758)]
    assert reading_order(boxes) == [0, 2, 1, 3]


def test_a_ruled_tables_wrapped_cells_stay_one_row():
    # Name | Description, a rule under each row; descriptions wrap over two or three lines.
    lines = [TextLine((100, 110, 200, 140), "Name"), TextLine((400, 110, 600, 140), "Description"),
             TextLine((100, 170, 220, 200), "inputenc"), TextLine((400, 170, 900, 200), "translates input"),
             TextLine((400, 205, 880, 235), "encodings into LaTeX."),
             TextLine((100, 270, 220, 300), "listings"), TextLine((400, 270, 900, 300), "typesets"),
             TextLine((400, 305, 900, 335), "programs within"), TextLine((400, 340, 700, 370), "LaTeX.")]
    rules = [100, 155, 255, 385]
    assert lines_to_table_html(lines, html.escape, rules) == (
        "<table><tr><td>Name</td><td>Description</td></tr>"
        "<tr><td>inputenc</td><td>translates input encodings into LaTeX.</td></tr>"
        "<tr><td>listings</td><td>typesets programs within LaTeX.</td></tr></table>")
    # Without the rules, the wider gaps between rows than between wrapped lines say the same.
    assert lines_to_table_html(lines, html.escape).count("<tr>") == 3
    # Evenly spaced lines without rules: each line is a row of its own.
    even = [TextLine((l.box[0], 100 + 40 * row, l.box[2], 130 + 40 * row), l.text)
            for row, group in enumerate([lines[0:2], lines[2:4], lines[4:5], lines[5:7], lines[7:8], lines[8:9]])
            for l in group]
    assert lines_to_table_html(even, html.escape).count("<tr>") == 6
    # Rules only above and below a body of many rows: each visual row stays a row.
    body = [TextLine((100, 170 + 40 * i, 150, 200 + 40 * i), f"k{i}") for i in range(4)] + \
           [TextLine((400, 170 + 40 * i, 600, 200 + 40 * i), f"v{i}") for i in range(4)]
    assert lines_to_table_html(body, html.escape, [150, 340]).count("<tr>") == 4
