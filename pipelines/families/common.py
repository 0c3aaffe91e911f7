"""What every family shares: the resize its processor applies, box mapping into page pixels,
category mapping onto the 11 categories, element text conventions, warnings.

Coordinates here are (width, height) / (x1, y1, x2, y2), page pixels unless named otherwise.
"""
from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from typing import Any, Mapping, Sequence

from ..render.markdown import element_markdown
from ..schema import CATEGORIES, Element
from .base import Box
from .repair import salvage_json_list

Size = tuple[int, int]

# Labels other models use for our categories. dots.ocr's own 11 names map to themselves.
CATEGORY_SYNONYMS: dict[str, str] = {
    "image": "Picture", "figure": "Picture", "picture": "Picture", "chart": "Picture",
    "photo": "Picture", "graphic": "Picture", "diagram": "Picture", "logo": "Picture",
    "header": "Page-header", "page-header": "Page-header", "running-title": "Page-header",
    "footer": "Page-footer", "page-footer": "Page-footer", "page-number": "Page-footer",
    "equation": "Formula", "formula": "Formula", "math": "Formula", "display-formula": "Formula",
    "title": "Title", "doc-title": "Title", "document-title": "Title",
    "section-header": "Section-header", "section-title": "Section-header", "heading": "Section-header",
    "subtitle": "Section-header", "sub-title": "Section-header", "paragraph-title": "Section-header",
    "caption": "Caption", "figure-caption": "Caption", "table-caption": "Caption",
    "image-caption": "Caption", "figure-title": "Caption",
    "footnote": "Footnote", "table-footnote": "Footnote", "note": "Footnote",
    "list": "List-item", "list-item": "List-item", "bullet": "List-item",
    "table": "Table", "text": "Text", "paragraph": "Text", "plain-text": "Text",
}

_HEADING = re.compile(r"^\s*#{1,6}\s+")
_MATH_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def smart_resize(width: int, height: int, *, factor: int, min_pixels: int,
                 max_pixels: int) -> Size:
    """The (width, height) Qwen-style processors resize to: both sides multiples of factor,
    the area within [min_pixels, max_pixels], the aspect ratio kept as closely as possible.

    Equal to qwen-vl-utils' smart_resize, the reference for the Qwen-VL families, for every size
    and budget tested (tests/test_smart_resize.py), with arguments in our (width, height) order.
    transformers' Qwen2-VL image processor lacks the max(factor, ...) guards and differs at
    extreme aspect ratios: 11x647 px becomes 28x448 there, 28x644 here and in qwen-vl-utils.
    """
    if min(width, height) <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(width, height) / min(width, height) > 200:
        raise ValueError(f"aspect ratio must be under 200, got {width}x{height}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


class Warnings:
    """Warnings for one page: distinct messages once each, counted ones summed."""

    def __init__(self) -> None:
        self._messages: list[str] = []
        self._counts: Counter[str] = Counter()

    def add(self, message: str | None) -> None:
        if message and message not in self._messages:
            self._messages.append(message)

    def count(self, template: str, n: int = 1) -> None:
        """template has {n}; one message per template, with the total."""
        self._counts[template] += n

    def as_list(self) -> list[str]:
        return self._messages + [t.format(n=n) for t, n in self._counts.items() if n]


def half_up(value: float) -> int:
    # Python's round() rounds halves to even; pixels round halves up, so mapped boxes are predictable.
    return math.floor(value + 0.5)


def numeric_box(value: Any) -> Box | None:
    """Four finite numbers with x1 < x2 and y1 < y2, or None (wrong arity, text, NaN, empty)."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    x1, y1, x2, y2 = (float(v) for v in value)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def scale_box(box: Box, space: tuple[float, float], page_size: Size, offset: float = 0.0) -> Box:
    """A box in a coordinate space of extent `space` (model-input pixels, 1000 for relative
    coordinates, 999 for DeepSeek) mapped to page pixels; offset 0.5 takes a bin's centre."""
    sx, sy = page_size[0] / space[0], page_size[1] / space[1]
    return ((box[0] + offset) * sx, (box[1] + offset) * sy, (box[2] + offset) * sx, (box[3] + offset) * sy)


def place_box(box: Box, page_size: Size, log: Warnings) -> tuple[int, int, int, int] | None:
    """Integer page box, clipped to the page; None (with a warning) if nothing of it is on the page."""
    width, height = page_size
    x1, y1, x2, y2 = (half_up(v) for v in box)
    cx1, cx2 = min(max(x1, 0), width), min(max(x2, 0), width)
    cy1, cy2 = min(max(y1, 0), height), min(max(y2, 0), height)
    if cx2 <= cx1 or cy2 <= cy1:
        log.count("dropped {n} element(s) whose box lies outside the page or is empty")
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        log.count("clipped {n} box(es) that crossed the page edge")
    return cx1, cy1, cx2, cy2


def make_element(raw_box: Any, space: tuple[float, float], page_size: Size, category: str,
                 text: str, log: Warnings, offset: float = 0.0) -> Element | None:
    """An Element from a model's box and text, or None (with a warning) for an unusable box."""
    box = numeric_box(raw_box)
    if box is None:
        log.count("dropped {n} element(s) with an invalid box (not 4 numbers with x1<x2, y1<y2)")
        return None
    placed = place_box(scale_box(box, space, page_size, offset), page_size, log)
    return Element(placed, category, clean_text(category, text)) if placed else None


def region_element(region: Box | None, page_size: Size, category: str, text: str) -> Element:
    """The element for an answer about a region (the whole page when no region was asked for)."""
    box = (0, 0, page_size[0], page_size[1]) if region is None else page_region(region, page_size)
    return Element(box, category, clean_text(category, text))


def page_region(region: Box, page_size: Size) -> tuple[int, int, int, int]:
    """A user's region as an integer page box, clipped to the page."""
    x1, y1, x2, y2 = (half_up(v) for v in check_region(region, page_size))
    return x1, y1, x2, y2


def check_region(region: Box, page_size: Size) -> Box:
    """A user's region clipped to the page; ValueError when it is not a box on the page."""
    try:
        box = numeric_box(list(region))
    except TypeError:
        box = None
    if box is None:
        raise ValueError(f"region must be [x1, y1, x2, y2] with x1<x2 and y1<y2, got {region!r}")
    x1, y1 = max(box[0], 0.0), max(box[1], 0.0)
    x2, y2 = min(box[2], float(page_size[0])), min(box[3], float(page_size[1]))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise ValueError(f"region {region!r} is not on the {page_size[0]}x{page_size[1]} page")
    return x1, y1, x2, y2


def json_objects(text: str, log: Warnings) -> list[dict] | None:
    """The JSON objects of a list-of-elements answer, every complete one kept when generation was
    cut off (with a warning); None when the answer holds no JSON object at all."""
    salvaged = salvage_json_list(text)
    if not salvaged.items and not salvaged.truncated:
        return None
    if salvaged.truncated:
        log.add(f"recovered {len(salvaged.items)} complete elements from truncated output")
    if salvaged.malformed:
        log.count("dropped {n} element(s) that were not valid JSON", salvaged.malformed)
    objects = [item for item in salvaged.items if isinstance(item, dict)]
    if len(objects) < len(salvaged.items):
        log.count("dropped {n} element(s) that were not JSON objects", len(salvaged.items) - len(objects))
    return objects


def normalise_label(label: str) -> str:
    return re.sub(r"[\s_]+", "-", str(label).strip().lower())


def map_category(label: Any, native: Mapping[str, str], log: Warnings) -> str:
    """Our category for a model's label: the family's own vocabulary first (no warning), then
    the 11 categories, then the closest synonym (Image -> Picture), else Text, with a warning."""
    key = normalise_label(label)
    if key in native:
        return native[key]
    for category in CATEGORIES:
        if key == category.lower():
            return category
    category = CATEGORY_SYNONYMS.get(key, "Text")
    log.add(f"mapped unknown category {label!r} to {category}")
    return category


def free_label_category(label: Any) -> str:
    """Category of a box a free prompt asked for: its label names one of ours, or it is Text (the
    label, "logo" or "cat", is then the element's text)."""
    key = normalise_label(label)
    return next((c for c in CATEGORIES if c.lower() == key), "Text")


def clean_text(category: str, text: Any) -> str:
    """Element text in our conventions: no heading marks (the renderer adds them), formulas
    without math delimiters, pictures without text."""
    text = "" if text is None else str(text).strip()
    if category == "Picture":
        return ""
    if category in ("Title", "Section-header"):
        return _HEADING.sub("", text)
    if category == "Formula":
        return strip_math_delimiters(text)
    return text


def strip_math_delimiters(text: str) -> str:
    """LaTeX without one enclosing $$..$$, \\[..\\], \\(..\\) or $..$ pair."""
    for opening, closing in _MATH_DELIMITERS:
        inner = text[len(opening):len(text) - len(closing)]
        if (len(text) >= len(opening) + len(closing) and text.startswith(opening)
                and text.endswith(closing) and opening not in inner):
            return inner.strip()
    return text


def markdown_of(elements: Sequence[Element]) -> str:
    """Markdown of the elements in order (pictures need a URL, which the pipeline adds)."""
    return "\n\n".join(block for block in (element_markdown(e) for e in elements) if block)


def strip_tokens(text: str, tokens: Sequence[str]) -> str:
    for token in tokens:
        text = text.replace(token, "")
    return text
