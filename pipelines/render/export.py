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
    annotated_pngs: list[str | Path] | None = None,
) -> Path:
    """Write the zip; page_images are the original pages (images, or PNG files, opened only when a
    page has pictures to crop), in the same order as result.pages. annotated_pngs: the pages
    already drawn and encoded (the UI has them), stored as they are instead of drawn again."""
    destination = Path(destination)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        document_md = []
        for number, (page, original) in enumerate(zip(result.pages, page_images)):
            stem = f"page_{page.page + 1:03d}"
            pictures = [(i, e) for i, e in enumerate(page.elements) if e.category == "Picture"]
            image = _opened(original) if pictures or annotated_pngs is None else None
            if annotated_pngs is not None:  # PNG is compressed already: stored, not deflated again
                archive.write(annotated_pngs[number], f"{stem}.png", compress_type=zipfile.ZIP_STORED)
            else:
                archive.writestr(f"{stem}.png", _png_bytes(draw_elements(image, page.elements)),
                                 compress_type=zipfile.ZIP_STORED)
            archive.writestr(f"{stem}.json", json.dumps(page.to_dict(), ensure_ascii=False, indent=2))
            markdown = page_markdown(page, drop_headers_footers=drop_headers_footers)
            archive.writestr(f"{stem}.md", markdown)
            document_md.append(markdown)
            for index, element in pictures:
                archive.writestr(picture_filename(page.page, index), _png_bytes(image.crop(element.bbox)),
                                 compress_type=zipfile.ZIP_STORED)
        archive.writestr("document.md", "\n\n---\n\n".join(document_md))
        archive.writestr("document.json", result.to_json())
    return destination


def _opened(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    with Image.open(image) as stored:
        return stored.convert("RGB")
