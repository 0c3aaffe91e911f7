"""PaddleOCR-VL: element-level recognition of a whole page (or crop) by task prompt.

Prompts: transformers docs/source/en/model_doc/paddleocr_vl.md ("OCR:", "Table Recognition:",
"Formula Recognition:", "Chart Recognition:"), the same in github.com/PaddlePaddle/PaddleOCR.
Outputs: text; a table in OTSL (<fcel> <ecel> <lcel> <ucel> <xcel> <nl>, converted to HTML the
way PaddleX's convert_otsl_to_html reads it) or HTML; LaTeX; a chart as pipe-separated rows,
which we turn into an HTML table (a chart's data is a table).
No boxes come out: the answer is one element covering the page, so order is trivial.
Input size: transformers PaddleOCRVLImageProcessor, smart_resize factor 28 (patch 14 x merge 2),
size {"shortest_edge": 384*384, "longest_edge": 1536*1536}.
"""
from __future__ import annotations

import html
import re

from ..schema import Element
from .base import Box, ImageLimits
from .common import Size, Warnings, region_element
from .template import BaseFamily
from .repair import collapse_repetition

PROMPTS = {
    "text_only": "OCR:",
    "table": "Table Recognition:",
    "formula": "Formula Recognition:",
    "chart": "Chart Recognition:",
}

_OTSL_TAG = re.compile(r"<(fcel|ecel|lcel|ucel|xcel|nl)>")
_SEPARATOR_ROW = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


class PaddleOCRVLFamily(BaseFamily):
    name = "paddleocr_vl"
    modes = ("text_only", "table", "formula", "chart")
    prompts = PROMPTS
    factor = 28
    default_limits = ImageLimits(min_pixels=384 * 384, max_pixels=1536 * 1536)
    max_new_tokens = 4096
    end_tokens = ("</s>", "<|end_of_sentence|>", "<|endoftext|>")

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        text, warning = collapse_repetition(text)  # before conversion: loops sit at the raw tail
        log.add(warning)
        if mode == "table":
            text = table_html(text)
        elif mode == "chart":
            text = pipe_table_html(text)
        return [region_element(None, page_size, self.text_categories.get(mode, "Text"), text)]


def table_html(text: str) -> str:
    """A recognised table as HTML: OTSL converted, HTML kept, anything else as it came."""
    return otsl_to_html(text) if _OTSL_TAG.search(text) else text


def otsl_to_html(otsl: str) -> str:
    """OTSL -> <table>: an <lcel> widens the cell on its left, a <ucel> lengthens the one above,
    an <xcel> does both; <nl> ends a row."""
    rows: list[list[tuple[str, str]]] = [[]]
    tags = list(_OTSL_TAG.finditer(otsl))
    for index, tag in enumerate(tags):
        content_end = tags[index + 1].start() if index + 1 < len(tags) else len(otsl)
        if tag.group(1) == "nl":
            rows.append([])
        else:
            rows[-1].append((tag.group(1), otsl[tag.end():content_end].strip()))
    rows = [row for row in rows if row]
    width = max((len(row) for row in rows), default=0)
    grid = [row + [("ecel", "")] * (width - len(row)) for row in rows]
    parts = []
    for r, row in enumerate(grid):
        cells = []
        for c, (tag, content) in enumerate(row):
            if tag not in ("fcel", "ecel"):
                continue  # covered by a spanning cell
            colspan = 1
            while c + colspan < width and row[c + colspan][0] == "lcel":
                colspan += 1
            rowspan = 1
            while r + rowspan < len(grid) and grid[r + rowspan][c][0] in ("ucel", "xcel"):
                rowspan += 1
            attrs = ((f' rowspan="{rowspan}"' if rowspan > 1 else "")
                     + (f' colspan="{colspan}"' if colspan > 1 else ""))
            cells.append(f"<td{attrs}>{html.escape(content, quote=False)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(parts) + "</table>"


def pipe_table_html(text: str) -> str:
    """Chart data written as 'a | b' rows -> an HTML table (first row as header)."""
    if text.lstrip().startswith("<table") or "|" not in text:
        return table_html(text)
    rows = []
    for line in text.splitlines():
        if not line.strip() or _SEPARATOR_ROW.match(line):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        tag = "th" if not rows else "td"
        row = "".join(f"<{tag}>{html.escape(c, quote=False)}</{tag}>" for c in cells)
        rows.append(f"<tr>{row}</tr>")
    return "<table>" + "".join(rows) + "</table>"


FAMILY = PaddleOCRVLFamily()
