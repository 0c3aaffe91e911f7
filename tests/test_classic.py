"""The embedded CPU engine on pages rendered from known text (real OCR and layout models)."""
from __future__ import annotations

import html
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import CATEGORIES, Element, EngineCapabilityError, PageResult, PipelineError, UnknownModelError, UnsupportedModeError, load_pipeline
from pipelines.engines.classic import assemble_elements, merge_duplicate_regions
from pipelines.layout import TextLine
from tests.pages import LEFT_COLUMN, PARAGRAPHS, RIGHT_COLUMN, TITLE, character_error_rate, single_column_page, two_column_page


@pytest.fixture(scope="module")
def classic():
    return load_pipeline("classic")


def check_boxes(page):
    assert page.elements, "no elements found"
    for element in page.elements:
        x1, y1, x2, y2 = element.bbox
        assert 0 <= x1 < x2 <= page.width and 0 <= y1 < y2 <= page.height
        assert element.category in CATEGORIES


def test_layout_all_reads_known_text(classic):
    image = single_column_page()
    result = classic.parse_document(image, "layout_all")
    page = result.pages[0]
    assert (page.width, page.height) == image.size and page.model == "classic"
    check_boxes(page)
    text = " ".join(e.text for e in page.elements)
    assert character_error_rate(" ".join([TITLE, *PARAGRAPHS]), text) < 0.03
    title = next(e for e in page.elements if TITLE.split()[0] in e.text)
    assert title.category == "Title"
    # The title line was drawn at (120, 120) with a 48 px font: its box must sit there.
    assert abs(title.bbox[0] - 120) < 20 and abs(title.bbox[1] - 120) < 30 and title.bbox[3] < 200
    assert page.markdown.index("Quarterly") < page.markdown.index("oxygen") < page.markdown.index("laboratory")
    assert {"load_s", "layout_s", "ocr_s", "total_s"} <= set(page.timings)
    raw = json.loads(page.raw_output)
    assert len(raw["lines"]) >= 4 and all(0 < line["score"] <= 1 for line in raw["lines"])


def test_two_columns_are_read_column_by_column(classic):
    page = classic.parse_document(two_column_page(), "text_only").pages[0]
    text = page.markdown
    expected = " ".join([TITLE, *LEFT_COLUMN, *RIGHT_COLUMN])
    assert character_error_rate(expected, text) < 0.05
    assert text.index("Alpha") < text.index("water") < text.index("Beta") < text.index("evening")


def test_layout_only_returns_regions_without_text(classic):
    page = classic.parse_document(single_column_page(), "layout_only").pages[0]
    check_boxes(page)
    assert all(e.text == "" for e in page.elements) and "ocr_s" not in page.timings


def test_pdf_pages_keep_their_numbers_and_sizes(classic):
    buffer = io.BytesIO()
    single_column_page().save(buffer, format="PDF", resolution=150, save_all=True, append_images=[two_column_page()])
    result = classic.parse_document(buffer.getvalue(), "text_only", dpi=100, pages="2")
    assert [p.page for p in result.pages] == [1]
    # 1240x1754 px at 150 dpi is 595.2x841.9 pt; at 100 dpi PDFium renders 826.7x1169.3 as 827x1170.
    assert (result.pages[0].width, result.pages[0].height) == (827, 1170)
    assert "Beta" in result.markdown
    assert result.pages[0].timings["decode_s"] > 0  # rendering the page is part of its time
    assert {"intake_s", "parse_s", "total_s"} <= set(result.timings)


def test_classic_cannot_chat_or_prompt(classic):
    with pytest.raises(EngineCapabilityError, match="cannot chat"):
        classic.chat(single_column_page(), [{"role": "user", "content": "hi"}])
    with pytest.raises(EngineCapabilityError, match="cannot follow a prompt"):
        classic.inference(single_column_page(), "Read the page")


def test_unknown_model_and_mode_are_clear_errors(classic):
    with pytest.raises(UnknownModelError, match="Unknown model 'nope'"):
        load_pipeline("nope")
    with pytest.raises(UnsupportedModeError, match="Unknown mode 'chat'") as caught:
        classic.parse_document(single_column_page(), "chat")
    assert caught.value.status == 422
    text_reader = replace(classic.spec, key="reader", modes=("text_only",))
    with pytest.raises(UnsupportedModeError, match=r"'reader' does not support mode 'layout_all'; it supports \['text_only'\]"):
        text_reader.check_mode("layout_all")


def test_extract_text_only_returns_markdown(classic):
    assert character_error_rate(" ".join([TITLE, *PARAGRAPHS]), classic.extract_text_only(single_column_page())) < 0.03


def test_assembly_maps_regions_lines_and_titles():
    regions = [((100, 100, 1100, 160), "Section-header", 0.9), ((100, 200, 1100, 400), "Text", 0.9),
               ((100, 450, 1100, 600), "Text", 0.8), ((100, 700, 600, 900), "Picture", 0.9)]
    lines = [TextLine((110, 105, 900, 155), "Big Title"), TextLine((110, 210, 1000, 240), "first line"),
             TextLine((110, 250, 800, 280), "second line"), TextLine((120, 980, 300, 1000), "stray note"),
             TextLine((150, 750, 300, 770), "label inside picture")]
    elements = assemble_elements(regions, lines, 1240, 1754)
    assert [(e.category, e.text) for e in elements] == [
        ("Title", "Big Title"), ("Text", "first line second line"), ("Picture", ""),
        ("Text", "label inside picture"), ("Text", "stray note"),
    ]  # the empty text region was dropped as a false detection; the picture's label is kept
    assert elements[2].bbox == (100, 700, 600, 900)


def test_margin_text_becomes_header_and_footer():
    lines = [TextLine((100, 20, 400, 50), "Journal of Things"), TextLine((100, 500, 400, 530), "body"),
             TextLine((600, 1700, 640, 1730), "7")]
    assert [e.category for e in assemble_elements([], lines, 1240, 1754)] == ["Page-header", "Text", "Page-footer"]


def test_duplicate_layout_boxes_are_merged():
    merged = merge_duplicate_regions([((0, 0, 100, 100), "Text", 0.6), ((2, 3, 101, 98), "Text", 0.9),
                                      ((0, 200, 100, 300), "Table", 0.9)])
    assert sorted(merged) == [((0, 0, 101, 100), "Text", 0.9), ((0, 200, 100, 300), "Table", 0.9)]


def test_page_number_in_the_gutter_does_not_merge_columns():
    # A centred page number sits between the columns; the body must still read column by column.
    lines = [TextLine((100, 20, 300, 45), "Running head"), TextLine((900, 20, 1140, 45), "Authors"),
             TextLine((100, 200, 580, 230), "left one"), TextLine((100, 240, 580, 270), "left two"),
             TextLine((660, 200, 1140, 230), "right one"), TextLine((660, 240, 1140, 270), "right two"),
             TextLine((600, 1700, 640, 1730), "7")]
    regions = [((100, 195, 580, 275), "Text", 0.9), ((660, 195, 1140, 275), "Text", 0.9)]
    elements = assemble_elements(regions, lines, 1240, 1754)
    assert [e.text for e in elements] == ["Running head", "Authors", "left one left two", "right one right two", "7"]
    assert [e.category for e in elements] == ["Page-header", "Page-header", "Text", "Text", "Page-footer"]


def test_a_bulleted_text_region_becomes_list_items():
    lines = [TextLine((100, 100, 600, 130), "• Apples are red"), TextLine((100, 140, 600, 170), "• Pears are green"),
             TextLine((130, 180, 600, 210), "and soft when ripe")]
    elements = assemble_elements([((90, 90, 610, 220), "Text", 0.9)], lines, 1240, 1754)
    assert [(e.category, e.text, e.bbox) for e in elements] == [
        ("List-item", "• Apples are red", (100, 100, 600, 130)),
        ("List-item", "• Pears are green and soft when ripe", (100, 140, 600, 210)),
    ]


def test_every_ocr_line_lands_in_exactly_one_element():
    """Whatever regions the layout model returns (pictures, tables, overlaps, none), each line the
    recogniser read reaches the output once."""
    import random

    rng = random.Random(7)
    categories = ["Text", "Picture", "Section-header", "Caption", "Page-header", "Page-footer", "Formula"]
    for case in range(150):
        width, height = 1240, 1754
        regions = []
        for _ in range(rng.randint(0, 6)):
            x, y = rng.randint(0, width - 200), rng.randint(0, height - 200)
            regions.append(((x, y, x + rng.randint(60, 900), y + rng.randint(40, 700)), rng.choice(categories),
                            rng.random()))
        lines = []
        for n in range(rng.randint(1, 25)):
            x, y = rng.randint(0, width - 120), rng.randint(0, height - 40)
            lines.append(TextLine((x, y, x + rng.randint(30, 500), y + rng.randint(14, 34)), f"w{case}x{n}"))
        elements = assemble_elements(regions, lines, width, height)
        words = [word for element in elements for word in element.text.split()]
        assert sorted(words) == sorted(line.text for line in lines), (case, regions)


def test_a_framed_box_of_text_taken_for_a_picture_keeps_its_text():
    # A code box the layout model calls a figure: lines cover most of it, so it is text.
    code = [TextLine((220, 600 + 40 * row, 220 + 420 + 30 * (row % 3), 630 + 40 * row), f"line_{row}();")
            for row in range(6)]
    elements = assemble_elements([((200, 580, 900, 850), "Picture", 0.8)], code, 1240, 1754)
    assert [e.category for e in elements] == ["Text"]
    assert elements[0].text == " ".join(f"line_{row}();" for row in range(6))
    # A chart with a few labels stays a picture, and its labels are still read.
    labels = [TextLine((220, 1000, 300, 1020), "2024"), TextLine((700, 1000, 780, 1020), "2025")]
    elements = assemble_elements([((200, 600, 900, 1030), "Picture", 0.8)], labels, 1240, 1754)
    assert [(e.category, e.text) for e in elements] == [("Picture", ""), ("Text", "2024"), ("Text", "2025")]


def test_page_numbers_and_running_heads_in_text_regions_are_headers_and_footers():
    from pipelines.render.markdown import page_markdown

    lines = [TextLine((100, 60, 500, 90), "Chapter 2. Methods"), TextLine((100, 300, 1100, 330), "Body text."),
             TextLine((100, 340, 900, 370), "More body."), TextLine((600, 1580, 660, 1610), "- 14 -")]
    regions = [((90, 50, 510, 100), "Text", 0.9), ((90, 290, 1110, 380), "Text", 0.9),
               ((590, 1570, 670, 1620), "Text", 0.9)]
    elements = assemble_elements(regions, lines, 1240, 1754)
    assert [(e.category, e.text) for e in elements] == [
        ("Page-header", "Chapter 2. Methods"), ("Text", "Body text. More body."), ("Page-footer", "- 14 -")]
    page = PageResult(page=0, width=1240, height=1754, model="classic", mode="layout_all", elements=elements)
    assert page_markdown(page, drop_headers_footers=True).strip() == "Body text. More body."
    # Text beside the body, or taller than two rows, is body text even near an edge.
    beside = [TextLine((100, 1640, 500, 1670), "Left note"), TextLine((700, 1600, 1100, 1700), "Tall figure")]
    elements = assemble_elements([((690, 1590, 1110, 1710), "Picture", 0.9)], beside, 1240, 1754)
    assert [e.category for e in elements if e.text == "Left note"] == ["Text"]


def test_both_runtimes_read_the_same_text(monkeypatch):
    """OpenVINO (the default where installed) and onnxruntime run the same models: same lines, same text."""
    from pipelines.engines.classic import ClassicEngine, ocr_runtime
    from pipelines.engines.base import ParseOptions
    from pipelines.documents import Page

    page = Page(single_column_page(), 0)
    texts = {}
    for runtime in ("openvino", "onnxruntime"):
        monkeypatch.setenv("CHATVLMLLM_OCR_RUNTIME", runtime)
        assert ocr_runtime() == runtime
        engine = ClassicEngine()
        engine.load()
        texts[runtime] = [e.text for e in engine.parse_page(page, "text_only", ParseOptions()).elements]
    assert texts["openvino"] == texts["onnxruntime"]
    assert character_error_rate(" ".join([TITLE, *PARAGRAPHS]), " ".join(texts["openvino"])) < 0.03
    monkeypatch.setenv("CHATVLMLLM_OCR_RUNTIME", "cuda")
    with pytest.raises(PipelineError, match="must be openvino or onnxruntime"):
        ocr_runtime()


def test_horizontal_rules_of_a_drawn_table():
    import numpy as np

    from pipelines.engines.classic import horizontal_rules

    page = np.full((600, 800, 3), 255, dtype=np.uint8)
    for y in (100, 160, 300):  # three rules across the table, 2 px thick
        page[y:y + 2, 100:700] = 0
    page[200:202, 100:250] = 0  # a short underline: not a rule
    page[120:140, 110:300] = 40  # text-like dark blocks
    assert horizontal_rules(page, (100, 90, 700, 310)) == [100.5, 160.5, 300.5]
    assert horizontal_rules(page, (100, 90, 700, 150)) == [100.5]


def test_text_only_is_the_pages_text_as_one_element_with_tables_as_rows(classic):
    invoice = Path(__file__).resolve().parent.parent / "assets" / "invoice.png"
    layout = classic.parse_document(invoice, "layout_all").pages[0]
    text = classic.parse_document(invoice, "text_only").pages[0]
    assert len({e.category for e in layout.elements}) > 2 and any(e.category == "Table" for e in layout.elements)
    furniture = ("Page-header", "Page-footer")
    [only] = [e for e in text.elements if e.category not in furniture]
    assert only.category == "Text" and "<td>" not in only.text and "INV-2024-0317" in only.text
    # Running heads and page numbers stay their own elements, as in layout + text.
    assert [e for e in text.elements if e.category in furniture] == [e for e in layout.elements if e.category in furniture]
    body = [e.bbox for e in layout.elements if e.text.strip() and e.category not in furniture]
    assert only.bbox == (min(b[0] for b in body), min(b[1] for b in body), max(b[2] for b in body), max(b[3] for b in body))
    # A table's row is a line of its own (a hard break after it), its cells two spaces apart.
    table = next(e for e in layout.elements if e.category == "Table")
    first_row = re.findall(r"<td[^>]*>(.*?)</td>", re.search(r"<tr>(.*?)</tr>", table.text).group(1))
    lines = [line.rstrip().lstrip("\\") for line in only.text.splitlines()]
    assert "  ".join(html.unescape(cell) for cell in first_row if cell) in lines


def test_text_only_table_rows_show_as_text_in_markdown():
    from pipelines.engines.classic import page_text

    table = ("<table><tr><td>#</td><td>Description</td><td>Qty</td></tr><tr><td>1.</td><td>Pens</td><td>3</td></tr>"
             "<tr><td></td><td></td></tr><tr><td>- 2</td><td>Ink &amp; nib</td></tr></table>")
    elements = [Element((10, 5, 90, 15), "Page-header", "Journal"), Element((10, 20, 90, 40), "Text", "Order 7"),
                Element((10, 50, 90, 90), "Table", table), Element((40, 95, 60, 99), "Page-footer", "3")]
    header, body, footer = page_text(elements)
    assert (header.category, footer.category) == ("Page-header", "Page-footer")
    # No row may become a heading or a list item; empty rows vanish; each row ends in a hard break.
    assert body == Element((10, 20, 90, 90), "Text", "Order 7\n\n\\#  Description  Qty  \n1\\.  Pens  3  \n\\- 2  Ink & nib")
    assert page_text([Element((0, 0, 5, 5), "Picture", "")]) == []
