"""The result contract: validation, clipping and JSON round trips."""
from __future__ import annotations

import json

import pytest

from pipelines import CATEGORIES, DocumentResult, Element, PageResult


def test_categories_are_dots_ocr_eleven():
    assert CATEGORIES == ("Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header",
                          "Picture", "Section-header", "Table", "Text", "Title")


def test_element_rounds_box_to_integers():
    element = Element((10.4, 20.6, 30.5, 40.49), "Text", "hello")
    assert element.bbox == (10, 21, 30, 40)
    assert all(isinstance(v, int) for v in element.bbox)


@pytest.mark.parametrize("bbox", [(10, 10, 10, 20), (10, 30, 20, 20)])
def test_element_rejects_empty_box(bbox):
    with pytest.raises(ValueError, match="empty bbox"):
        Element(bbox, "Text")


def test_element_rejects_unknown_category():
    with pytest.raises(ValueError, match="unknown category 'Paragraph'"):
        Element((0, 0, 5, 5), "Paragraph")


def test_clipping_to_page():
    assert Element((-5, -5, 50, 60), "Table").clipped(40, 30).bbox == (0, 0, 40, 30)
    assert Element((50, 50, 60, 60), "Text").clipped(40, 30) is None


def sample_document() -> DocumentResult:
    page = PageResult(
        page=0, width=100, height=200, model="classic", mode="layout_all",
        elements=[Element((1, 2, 30, 40), "Title", "Заголовок"), Element((5, 50, 95, 90), "Table", "<table></table>")],
        markdown="# Заголовок", raw_output="{}", timings={"total_s": 1.5}, tokens={"prompt": 3, "generated": 7},
        warnings=["page 1: rendered at 150 dpi"],
    )
    return DocumentResult(source="a.pdf", model="classic", mode="layout_all", pages=[page],
                          timings={"total_s": 2.0})


def test_document_json_round_trip():
    document = sample_document()
    text = document.to_json()
    data = json.loads(text)
    assert data["pages"][0]["elements"][0] == {"bbox": [1, 2, 30, 40], "category": "Title", "text": "Заголовок"}
    assert data["pages"][0]["tokens"] == {"prompt": 3, "generated": 7}
    assert "Заголовок" in text  # not \u-escaped
    assert DocumentResult.from_json(text) == document


def test_document_markdown_joins_pages():
    document = sample_document()
    document.pages.append(PageResult(page=1, width=1, height=1, model="m", mode="text_only", markdown="second"))
    assert document.markdown == "# Заголовок\n\nsecond"
