"""Document intake: bytes or a path in, RGB page images out, with limits and clear errors.

The file type is decided by its content (magic bytes), never by its extension, so an HTML page
renamed to .png is refused and a PDF called .jpg still works.
"""
from __future__ import annotations

import io
import math
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .errors import DocumentError

Source = Union[str, os.PathLike, bytes, Image.Image]

DEFAULT_DPI = 200
# File types the intake reads (it goes by content; these are the names uploads may have).
DOCUMENT_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
MAX_RENDER_SIDE = 4500  # a PDF page rendered larger than this is rendered at a lower DPI
MAX_PAGE_DIGITS = 6  # a page number longer than this is not a page of any PDF we accept
# PDFium is not thread-safe: two threads inside it at once can crash the whole process (SIGSEGV),
# so every call into pypdfium2 in this process (opening, rendering, closing) holds this lock.
PDFIUM_LOCK = threading.RLock()


def mib(size: float) -> str:
    """Byte counts in one unit everywhere users read them."""
    return f"{size / 2**20:.1f} MiB" if size < 10 * 2**20 else f"{size / 2**20:.0f} MiB"


@dataclass(frozen=True)
class Limits:
    """Guards against oversized uploads; each has its own error message naming it."""

    max_bytes: int = 50 * 2**20
    max_pages: int = 200
    # Per page; also the decompression-bomb guard for images. At 40 MP a page through the CPU
    # engine raises the process's peak memory by about 0.85 GB (60 MP: 1.2 GB).
    max_pixels: int = 40_000_000
    # All selected pages together: bounds the work (and the disk for results) of one request.
    max_total_pixels: int = 1_000_000_000
    # Longest side over shortest side. Thinner shapes are not documents, and some stages (OCR
    # detection, VLM resizing) scale the short side up, so their memory grows with the square.
    max_aspect_ratio: float = 100.0


class Page:
    """One page: an RGB image, or a recipe to render it when its turn comes (PDF pages), so a
    long document never holds all its pages in memory. release() drops a rendered image that
    can be rendered again."""

    def __init__(self, image: Image.Image | None = None, number: int = 0, dpi: float | None = None,
                 warnings: list[str] | None = None, decode_s: float = 0.0, *,
                 render: Callable[[], Image.Image] | None = None, size: tuple[int, int] | None = None):
        if image is None and (render is None or size is None):
            raise ValueError("a Page needs an image, or a render function and its size")
        self._image = image
        self._render = render
        self._size = image.size if image is not None else size
        self.number = number  # 0-based page number in the source document
        self.dpi = dpi  # render DPI for PDF pages
        self.warnings = list(warnings or [])
        self.decode_s = decode_s  # time spent decoding or rendering this page

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            started = time.perf_counter()
            self._image = self._render()  # type: ignore[misc]
            self.decode_s += time.perf_counter() - started
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        return self._size  # type: ignore[return-value]

    def release(self) -> None:
        """Free the rendered image if it can be rendered again; a decoded image stays."""
        if self._render is not None:
            self._image = None


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


def page_number(value) -> int:
    """A 1-based page number from any client's value, or a DocumentError saying what is wrong."""
    try:
        number = int(value)
        whole = number == value or isinstance(value, str)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 1 <= number <= 10**MAX_PAGE_DIGITS:
        shown = repr(value) if len(repr(value)) <= 24 else repr(value)[:20] + "…"
        raise DocumentError("bad_pages", f"A page number is a whole number from 1, got {shown}.")
    return number


def parse_page_selection(selection: str | None, page_count: int) -> list[int]:
    """'1-3,7' -> [0, 1, 2, 6] (0-based). Empty or None selects every page."""
    if selection is None or not str(selection).strip():
        return list(range(page_count))
    chosen: list[int] = []
    for part in str(selection).replace(" ", "").split(","):
        if not part:
            continue
        match = re.fullmatch(rf"(\d{{1,{MAX_PAGE_DIGITS}}})(?:-(\d{{0,{MAX_PAGE_DIGITS}}}))?", part)
        if not match:
            shown = part if len(part) <= 24 else part[:20] + "…"
            raise DocumentError("bad_pages", f"Cannot read page selection {shown!r}; use e.g. '1-3,7'.")
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
    """Read an image or PDF into RGB pages. Raises DocumentError with a clear message on bad input.

    PDF pages are rendered when first used (Page.image), one at a time under PDFIUM_LOCK; their
    sizes, and so every limit, are known and checked before any page is rendered."""
    if isinstance(source, Image.Image):
        _check_pixels(source.size, limits)
        _check_shape(source.size, limits)
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
        "too_large", f"File is {mib(size)}; the upload limit (max_bytes) is {mib(limits.max_bytes)}.")


def _check_pixels(size: tuple[int, int], limits: Limits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise DocumentError(
            "too_large",
            f"Page is {width}x{height} = {width * height / 1e6:.0f} megapixels; the pixel limit "
            f"(max_pixels, a decompression-bomb guard) is {limits.max_pixels / 1e6:.0f} megapixels.",
        )


def _check_shape(size: tuple[int, int], limits: Limits) -> None:
    width, height = size
    if min(width, height) < 1 or max(width, height) / min(width, height) > limits.max_aspect_ratio:
        raise DocumentError(
            "too_large",
            f"Page is {width}x{height} pixels, {max(width, height) / max(1, min(width, height)):.0f} times longer "
            f"than wide; the shape limit (max_aspect_ratio) is {limits.max_aspect_ratio:.0f}:1.",
        )


def _check_total_pixels(sizes: list[tuple[int, int]], limits: Limits) -> None:
    total = sum(w * h for w, h in sizes)
    if total > limits.max_total_pixels:
        raise DocumentError(
            "too_large",
            f"The {len(sizes)} selected page(s) hold {total / 1e6:.0f} megapixels together; the limit per "
            f"request (max_total_pixels) is {limits.max_total_pixels / 1e6:.0f} megapixels. Select fewer pages "
            "or a lower DPI.",
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

    with PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            count = len(pdf)
            if count == 0:
                raise DocumentError("empty_pdf", "This PDF has no pages.")
            chosen = parse_page_selection(selection, count)
            _check_page_count(len(chosen), limits)
            plans = []
            for number in chosen:
                try:
                    width_pt, height_pt = pdf.get_page_size(number)
                except pdfium.PdfiumError as error:
                    raise DocumentError("corrupt_pdf", f"Page {number + 1} of this PDF cannot be read ({error}).") from None
                plans.append(_plan_pdf_page(number, width_pt, height_pt, dpi, limits))
        finally:
            pdf.close()
    _check_total_pixels([size for _, size, _, _ in plans], limits)
    pages = [Page(number=number, dpi=page_dpi, warnings=notes, size=size,
                  render=lambda number=number, page_dpi=page_dpi, size=size: _render_pdf_page(data, number, page_dpi, size))
             for number, size, page_dpi, notes in plans]
    return Document(name, "pdf", pages, count)


def _open_pdf(data: bytes):
    """The PdfDocument (call with PDFIUM_LOCK held), or a DocumentError saying what is wrong."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        # PDFium keeps a stale error code after some failures, so confirm from the file itself.
        if "password" in str(error).lower() and b"/Encrypt" in data:
            raise DocumentError(
                "encrypted_pdf", "This PDF is encrypted with a password; upload an unlocked copy."
            ) from None
        if re.search(rb"/Count\s*0\b", data) and not re.search(rb"/Type\s*/Page(?!s)", data):
            raise DocumentError("empty_pdf", "This PDF has no pages.") from None
        raise DocumentError("corrupt_pdf", f"This PDF is damaged and cannot be read ({error}).") from None


def _plan_pdf_page(number: int, width_pt: float, height_pt: float, dpi: float, limits: Limits):
    """(number, pixel size, dpi, notes) of a page to render, after every per-page check."""
    if not (width_pt > 0 and height_pt > 0):
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
    size = (max(1, math.ceil(width_pt * dpi / 72)), max(1, math.ceil(height_pt * dpi / 72)))  # as PDFium sizes it
    _check_shape((width_pt, height_pt), limits)
    _check_pixels(size, limits)
    return number, size, dpi, notes


def _render_pdf_page(data: bytes, number: int, dpi: float, size: tuple[int, int]) -> Image.Image:
    """Render one page at its planned size; the document is opened and closed under the lock."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            page = pdf[number]
            try:
                bitmap = page.render(scale=dpi / 72, rotation=0, may_draw_forms=False)
                image = bitmap.to_pil().convert("RGB")
                bitmap.close()
            finally:
                page.close()
        except pdfium.PdfiumError as error:
            raise DocumentError("corrupt_pdf", f"Page {number + 1} of this PDF cannot be rendered ({error}).") from None
        finally:
            pdf.close()
    if image.size != size:  # never expected (same formula as PDFium's); the announced size is the contract
        image = image.resize(size, Image.Resampling.BILINEAR)
    return image


def _load_image(data: bytes, name: str, kind: str, selection: str | None, limits: Limits) -> Document:
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's bomb warning; its hard error stays active.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.size, limits)
            _check_shape(image.size, limits)
            # A GIF is its first frame; a multi-page TIFF is several pages.
            frame_count = getattr(image, "n_frames", 1) if kind == "tiff" else 1
            chosen = parse_page_selection(selection, frame_count)
            _check_page_count(len(chosen), limits)
            pages = []
            total = 0
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index in chosen:
                    _check_pixels(frame.size, limits)
                    _check_shape(frame.size, limits)
                    total += frame.size[0] * frame.size[1]
                    if total > limits.max_total_pixels:
                        _check_total_pixels([p.size for p in pages] + [frame.size], limits)
                    if frame_count == 1:
                        started = time.perf_counter()
                        pages.append(Page(to_rgb(frame), index, decode_s=time.perf_counter() - started))
                    else:  # a multi-page TIFF: each frame decoded when its turn comes, like PDF pages
                        pages.append(Page(number=index, size=frame.size,
                                          render=lambda index=index: _decode_frame(data, kind, index)))
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


def _decode_frame(data: bytes, kind: str, index: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(index)
            return to_rgb(image)
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise DocumentError("corrupt_image", f"Page {index + 1} of this {kind.upper()} image cannot be decoded ({error}).") from None


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
