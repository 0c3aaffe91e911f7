"""Elements -> Markdown: tables stay HTML, formulas become $$...$$, pictures become image links."""
from __future__ import annotations

import base64
import io
from typing import Callable

from PIL import Image

from ..schema import Element, PageResult
from .sanitize import sanitize_html

PictureRef = Callable[[int, int, Element], str]  # (page number, element index, element) -> URL


def picture_filename(page: int, index: int) -> str:
    """Where the zip export stores a cropped picture; PageResult.markdown links to it."""
    return f"images/page_{page + 1:03d}_picture_{index + 1:02d}.png"


def relative_picture_ref(page: int, index: int, element: Element) -> str:
    return picture_filename(page, index)


def data_url_picture_ref(image: Image.Image) -> PictureRef:
    """Pictures embedded as PNG data URLs, cropped from the page image (for the browser)."""

    def ref(page: int, index: int, element: Element) -> str:
        buffer = io.BytesIO()
        image.crop(element.bbox).save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    return ref


def safe_text(text: str) -> str:
    # Only text that could form a tag goes through the sanitiser, so plain text keeps its & and >.
    return sanitize_html(text) if "<" in text else text


def element_markdown(element: Element, picture_url: str | None = None) -> str:
    text = element.text.strip()
    category = element.category
    if category == "Picture":
        return f"![Picture]({picture_url})" if picture_url else ""
    if not text:
        return ""
    if category == "Formula":
        body = text.strip("$").strip()
        return f"$$\n{body}\n$$"
    if category == "Table":
        return sanitize_html(text)
    text = safe_text(text)
    if category == "Title":
        return "# " + " ".join(text.split())
    if category == "Section-header":
        return "## " + " ".join(text.split())
    if category == "List-item" and not text.lstrip().startswith(("-", "*", "•")) and not text[:1].isdigit():
        return "- " + text
    return text


def page_markdown(
    page: PageResult,
    picture_ref: PictureRef | None = relative_picture_ref,
    drop_headers_footers: bool = False,
) -> str:
    blocks = []
    for index, element in enumerate(page.elements):
        if drop_headers_footers and element.category in ("Page-header", "Page-footer"):
            continue
        url = picture_ref(page.page, index, element) if picture_ref and element.category == "Picture" else None
        block = element_markdown(element, url)
        if block:
            blocks.append(block)
    return "\n\n".join(blocks)
