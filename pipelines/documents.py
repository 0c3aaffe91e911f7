"""Document intake: bytes or a path in, RGB page images out, with limits and clear errors.

The file type is decided by its content (magic bytes), never by its extension, so an HTML page
renamed to .png is refused and a PDF called .jpg still works.
"""
from __future__ import annotations

import io
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .errors import DocumentError

Source = Union[str, os.PathLike, bytes, Image.Image]

DEFAULT_DPI = 200
MAX_RENDER_SIDE = 4500  # a PDF page rendered larger than this is rendered at a lower DPI


@dataclass(frozen=True)
class Limits:
    """Guards against oversized uploads; each has its own error message naming it."""

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 200
    max_pixels: int = 60_000_000  # per page; also the decompression-bomb guard for images


@dataclass
class Page:
    image: Image.Image  # RGB
    number: int  # 0-based page number in the source document
    dpi: float | None = None  # render DPI for PDF pages
    warnings: list[str] = field(default_factory=list)
    decode_s: float = 0.0  # time spent decoding or rendering this page

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass
class Document:
    name: str
    kind: str  # "pdf" or the image format ("png", "jpeg", ...)
    pages: list[Page]
    page_count: int  # pages in the source, before selection


_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
)


def sniff_kind(data: bytes) -> str:
    """The document kind from its first bytes, or a DocumentError saying what it is not."""
    if not data:
        raise DocumentError("empty_file", "The file is empty (0 bytes).")
    if data[:1024].lstrip().startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for signature, kind in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return kind
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<head", b"<body")):
        raise DocumentError(
            "unsupported_type",
            "This file is HTML/XML text, not an image or PDF (whatever its extension says). "
            "Supported: PDF, PNG, JPEG, WebP, TIFF, BMP, GIF.",
        )
    raise DocumentError(
        "unsupported_type",
        "Unrecognised file type: not a PDF or a supported image (PNG, JPEG, WebP, TIFF, BMP, GIF).",
    )


def parse_page_selection(selection: str | None, page_count: int) -> list[int]:
    """'1-3,7' -> [0, 1, 2, 6] (0-based). Empty or None selects every page."""
    if selection is None or not str(selection).strip():
        return list(range(page_count))
    chosen: list[int] = []
    for part in str(selection).replace(" ", "").split(","):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d*))?", part)
        if not match:
            raise DocumentError("bad_pages", f"Cannot read page selection {part!r}; use e.g. '1-3,7'.")
        start = int(match.group(1))
        end = start if match.group(2) is None else int(match.group(2) or page_count)
        if start < 1 or end < start:
            raise DocumentError("bad_pages", f"Page range {part!r} is empty or starts below 1.")
        if start > page_count:
            raise DocumentError(
                "bad_pages", f"Page {start} does not exist: the document has {page_count} page(s)."
            )
        chosen.extend(n - 1 for n in range(start, min(end, page_count) + 1) if n - 1 not in chosen)
    if not chosen:
        raise DocumentError("bad_pages", "The page selection selects no pages.")
    return chosen


def load_document(
    source: Source,
    *,
    dpi: float = DEFAULT_DPI,
    pages: str | None = None,
    limits: Limits = Limits(),
    name: str | None = None,
) -> Document:
    """Read an image or PDF into RGB pages. Raises DocumentError with a clear message on bad input."""
    if isinstance(source, Image.Image):
        _check_pixels(source.size, limits)
        return Document(name or "image", "image", [Page(to_rgb(source), 0)], 1)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "upload"
    else:
        path = Path(source)
        if not path.is_file():
            raise DocumentError("not_found", f"No such file: {path.name}")
        if path.stat().st_size > limits.max_bytes:
            raise _too_many_bytes(path.stat().st_size, limits)
        data = path.read_bytes()
        name = name or path.name
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(len(data), limits)
    if not 72 / 4 <= dpi <= 600:
        raise DocumentError("bad_dpi", f"DPI must be between 18 and 600, got {dpi}.")
    kind = sniff_kind(data)
    if kind == "pdf":
        return _load_pdf(data, name, dpi, pages, limits)
    return _load_image(data, name, kind, pages, limits)


def _too_many_bytes(size: int, limits: Limits) -> DocumentError:
    return DocumentError(
        "too_large",
        f"File is {size / 1e6:.1f} MB; the upload limit (max_bytes) is {limits.max_bytes / 1e6:.0f} MB.",
    )


def _check_pixels(size: tuple[int, int], limits: Limits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise DocumentError(
            "too_large",
            f"Page is {width}x{height} = {width * height / 1e6:.0f} megapixels; the pixel limit "
            f"(max_pixels, a decompression-bomb guard) is {limits.max_pixels / 1e6:.0f} megapixels.",
        )


def _check_page_count(count: int, limits: Limits) -> None:
    if count > limits.max_pages:
        raise DocumentError(
            "too_large",
            f"{count} pages selected; the page limit (max_pages) is {limits.max_pages}. "
            "Select fewer pages, e.g. '1-10'.",
        )


def _load_pdf(data: bytes, name: str, dpi: float, selection: str | None, limits: Limits) -> Document:
    import pypdfium2 as pdfium  # imported here: only PDF intake needs it

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        # PDFium keeps a stale error code after some failures, so confirm from the file itself.
        if "password" in str(error).lower() and b"/Encrypt" in data:
            raise DocumentError(
                "encrypted_pdf", "This PDF is encrypted with a password; upload an unlocked copy."
            ) from None
        if re.search(rb"/Count\s*0\b", data) and not re.search(rb"/Type\s*/Page(?!s)", data):
            raise DocumentError("empty_pdf", "This PDF has no pages.") from None
        raise DocumentError("corrupt_pdf", f"This PDF is damaged and cannot be read ({error}).") from None
    try:
        count = len(pdf)
        if count == 0:
            raise DocumentError("empty_pdf", "This PDF has no pages.")
        chosen = parse_page_selection(selection, count)
        _check_page_count(len(chosen), limits)
        pages = [_render_pdf_page(pdf, number, dpi, limits) for number in chosen]
    finally:
        pdf.close()
    return Document(name, "pdf", pages, count)


def _render_pdf_page(pdf, number: int, dpi: float, limits: Limits) -> Page:
    import pypdfium2 as pdfium

    try:
        page = pdf[number]
    except pdfium.PdfiumError as error:
        raise DocumentError("corrupt_pdf", f"Page {number + 1} of this PDF cannot be read ({error}).") from None
    try:
        width_pt, height_pt = page.get_size()
        if width_pt <= 0 or height_pt <= 0:
            raise DocumentError("corrupt_pdf", f"Page {number + 1} of this PDF has no size.")
        notes: list[str] = []
        longest_px = max(width_pt, height_pt) * dpi / 72
        if longest_px > MAX_RENDER_SIDE:
            new_dpi = MAX_RENDER_SIDE * 72 / max(width_pt, height_pt)
            notes.append(
                f"page {number + 1}: rendered at {new_dpi:.0f} dpi instead of {dpi:.0f} dpi to keep "
                f"its longest side within {MAX_RENDER_SIDE} px"
            )
            dpi = new_dpi
        _check_pixels((round(width_pt * dpi / 72), round(height_pt * dpi / 72)), limits)
        started = time.perf_counter()
        bitmap = page.render(scale=dpi / 72, rotation=0)
        image = bitmap.to_pil().convert("RGB")
    finally:
        page.close()
    return Page(image, number, dpi, notes, time.perf_counter() - started)


def _load_image(data: bytes, name: str, kind: str, selection: str | None, limits: Limits) -> Document:
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's bomb warning; its hard error stays active.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.size, limits)
            # A GIF is its first frame; a multi-page TIFF is several pages.
            frame_count = getattr(image, "n_frames", 1) if kind == "tiff" else 1
            chosen = parse_page_selection(selection, frame_count)
            _check_page_count(len(chosen), limits)
            pages = []
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index in chosen:
                    _check_pixels(frame.size, limits)
                    started = time.perf_counter()
                    pages.append(Page(to_rgb(frame), index))
                    pages[-1].decode_s = time.perf_counter() - started
                if index + 1 >= frame_count:
                    break
    except DocumentError:
        raise
    except Image.DecompressionBombError:
        raise DocumentError(
            "too_large", "This image declares an enormous size (max_pixels, decompression-bomb guard)."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise DocumentError(
            "corrupt_image",
            f"This {kind.upper()} image is corrupt or truncated and cannot be decoded ({error}).",
        ) from None
    return Document(name, kind, pages, frame_count)


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation applied; palette, alpha, CMYK, 16-bit, grey converted."""
    image.load()  # decode now, so truncation errors surface here
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # covers CMYK (Pillow undoes Adobe's inverted JPEG CMYK), L, 1, P
