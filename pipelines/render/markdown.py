"""Elements -> Markdown: tables stay HTML, formulas become $$...$$, pictures become image links."""
from __future__ import annotations

import base64
import html
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


# Where escaping lives: in the Markdown itself (PageResult.markdown, the zip's .md files, the raw
# view), not only in what the browser shows. Markdown is a format meant to be rendered, and every
# renderer (gr.Markdown, the region tab showing PageResult.markdown, GitHub, an editor's preview)
# makes raw HTML live; "&lt;" is how Markdown spells a literal "<". The unescaped text stays in the
# JSON (Element.text). Only our own pictures (data: URLs, export-relative files) are images.


def _no_images(markdown: str) -> str:
    # "![" opens a Markdown image, which the browser fetches as the page renders. Text never holds our
    # pictures (those come from Picture elements), so no "![" in it may open one: "&#91;" still shows
    # "[" in Markdown, inside HTML blocks and inside $$...$$ (Gradio emits those bodies as raw HTML).
    return markdown.replace("![", "!&#91;")


def escape_text(text: str) -> str:
    """Document or model text as Markdown that displays it: HTML is shown, never run or loaded."""
    # Only text that could form a tag is escaped, so plain text keeps its & and > (a "> quote" stays one).
    return _no_images(html.escape(text, quote=False) if "<" in text else text)


def safe_text(text: str) -> str:
    """Model answers (chat) that may use some HTML: allowlisted tags kept, no image loads from elsewhere."""
    return _no_images(sanitize_html(text) if "<" in text else text)


def element_markdown(element: Element, picture_url: str | None = None) -> str:
    text = element.text.strip()
    category = element.category
    if category == "Picture":
        return f"![Picture]({picture_url})" if picture_url else ""
    if not text:
        return ""
    if category == "Formula":
        body = escape_text(text.strip("$").strip())
        return f"$$\n{body}\n$$"
    if category == "Table":  # the one category whose text is meant to be HTML
        return _no_images(sanitize_html(text))
    text = escape_text(text)
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
