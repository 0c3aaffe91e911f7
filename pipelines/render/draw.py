"""Category-coloured boxes drawn with OpenCV on the original page."""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..schema import CATEGORIES, Element

# One fixed RGB colour per category, distinct enough to tell apart on a white page.
CATEGORY_COLOURS: dict[str, tuple[int, int, int]] = {
    "Caption": (230, 126, 34),
    "Footnote": (121, 85, 72),
    "Formula": (142, 68, 173),
    "List-item": (26, 188, 156),
    "Page-footer": (149, 165, 166),
    "Page-header": (52, 73, 94),
    "Picture": (241, 196, 15),
    "Section-header": (231, 76, 60),
    "Table": (39, 174, 96),
    "Text": (41, 128, 185),
    "Title": (199, 21, 133),
}


INK_LEVEL = 160  # grey levels below this count as text (or lines, pictures) a label would hide
LABEL_OVERLAP_COST = 4  # a label hidden under another is worse than the same area of page text


def line_width(width: int, height: int) -> int:
    """Box outline thickness that stays visible when a large page is shown scaled down."""
    return max(2, round(max(width, height) / 600))


def draw_elements(image: Image.Image, elements: list[Element]) -> Image.Image:
    """A copy of the page with each element's box and an 'index Category' label drawn on it."""
    canvas = np.array(image.convert("RGB"))
    height, width = canvas.shape[:2]
    thickness = line_width(width, height)
    font_scale = max(0.5, thickness / 3)
    ink = np.asarray(image.convert("L")) < INK_LEVEL  # a label goes where it hides the least of this
    placed: list[tuple[int, int, int, int]] = []
    for index, element in enumerate(elements):
        clipped = element.clipped(width, height)
        if clipped is None:
            continue
        x1, y1, x2, y2 = clipped.bbox
        colour = CATEGORY_COLOURS[element.category]
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, thickness)
        label = f"{index + 1} {element.category}"
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        label_w, label_h = text_w + 4, text_h + baseline + 4
        left, top = _label_place(clipped.bbox, label_w, label_h, width, height, ink, placed)
        placed.append((left, top, left + label_w, top + label_h))
        # Blended, not opaque: where the label must overlap the page, the text under it shows.
        patch = canvas[top:top + label_h, left:left + label_w]
        patch[:] = (patch * 0.25 + np.array(colour) * 0.75).astype(np.uint8)
        cv2.putText(canvas, label, (left + 2, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return Image.fromarray(canvas)


def _label_place(box: tuple[int, int, int, int], label_w: int, label_h: int, width: int, height: int,
                 ink: np.ndarray, placed: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Where an element's label goes: of the places around the box (left of it, above it left- or
    right-aligned, right of it, below it) and, last, inside its top corners, the one that hides the
    fewest dark pixels of the page, a pixel of an earlier label counting as LABEL_OVERLAP_COST of
    them (so labels cover each other only where every other place hides far more text); the
    first of equals."""
    x1, y1, x2, y2 = box
    candidates = [(x1 - label_w, y1), (x1, y1 - label_h), (x2 - label_w, y1 - label_h), (x2, y1), (x1, y2),
                  (x2 - label_w, y1), (x1, y1)]
    on_page = [(left, top) for left, top in candidates
               if left >= 0 and top >= 0 and left + label_w <= width and top + label_h <= height]
    on_page = on_page or [(min(x1, max(0, width - label_w)), min(y1, max(0, height - label_h)))]

    def cost(place: tuple[int, int]) -> int:
        left, top = place
        right, bottom = left + label_w, top + label_h
        hidden = int(np.count_nonzero(ink[top:bottom, left:right]))
        over_labels = sum(max(0, min(right, r[2]) - max(left, r[0])) * max(0, min(bottom, r[3]) - max(top, r[1]))
                          for r in placed)
        return hidden + LABEL_OVERLAP_COST * over_labels

    return min(on_page, key=cost)  # min keeps the first of equals: the order above


def legend_html(categories: list[str] | None = None) -> str:
    """A colour legend: one swatch per category (all of them unless a subset is given)."""
    items = []
    for category in categories or list(CATEGORIES):
        r, g, b = CATEGORY_COLOURS[category]
        items.append(
            f'<span style="display:inline-block;margin:2px 8px 2px 0;">'
            f'<span style="display:inline-block;width:12px;height:12px;background:rgb({r},{g},{b});'
            f'vertical-align:middle;margin-right:4px;"></span>{category}</span>'
        )
    return '<div class="legend">' + "".join(items) + "</div>"
