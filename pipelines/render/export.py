"""Zip export: per page the annotated PNG, JSON and Markdown (with cropped pictures), plus the document."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from PIL import Image

from ..schema import DocumentResult
from .draw import draw_elements
from .markdown import page_markdown, picture_filename


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def export_zip(
    result: DocumentResult,
    page_images: list[Image.Image | str | Path],
    destination: str | Path,
    drop_headers_footers: bool = False,
) -> Path:
    """Write the zip; page_images are the original pages (images, or PNG files opened one at a time),
    in the same order as result.pages."""
    destination = Path(destination)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        document_md = []
        for page, image in zip(result.pages, page_images):
            if not isinstance(image, Image.Image):
                with Image.open(image) as stored:
                    image = stored.convert("RGB")
            stem = f"page_{page.page + 1:03d}"
            archive.writestr(f"{stem}.png", _png_bytes(draw_elements(image, page.elements)))
            archive.writestr(f"{stem}.json", json.dumps(page.to_dict(), ensure_ascii=False, indent=2))
            markdown = page_markdown(page, drop_headers_footers=drop_headers_footers)
            archive.writestr(f"{stem}.md", markdown)
            document_md.append(markdown)
            for index, element in enumerate(page.elements):
                if element.category == "Picture":
                    archive.writestr(picture_filename(page.page, index), _png_bytes(image.crop(element.bbox)))
        archive.writestr("document.md", "\n\n---\n\n".join(document_md))
        archive.writestr("document.json", result.to_json())
    return destination
