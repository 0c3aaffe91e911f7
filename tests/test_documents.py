"""Intake: every supported format, conversions, PDF rendering, page selection, limits, bad input."""
from __future__ import annotations

import io

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from pipelines import DocumentError, Limits, load_document, parse_page_selection


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def pdf_bytes(sizes_pt: list[tuple[float, float]]) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for width, height in sizes_pt:
        pdf.new_page(width, height)
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"])
def test_each_image_format_loads_as_one_rgb_page(fmt):
    image = Image.new("RGB", (64, 40), (200, 30, 30))
    document = load_document(encode(image, fmt))
    assert document.kind == {"JPEG": "jpeg", "WEBP": "webp"}.get(fmt, fmt.lower())
    assert len(document.pages) == 1
    page = document.pages[0].image
    assert page.mode == "RGB" and page.size == (64, 40)
    red, green, blue = page.getpixel((10, 10))
    assert red > 150 and green < 80 and blue < 80


def test_multipage_tiff_is_several_pages_and_selection_applies():
    frames = [Image.new("L", (30, 20), shade) for shade in (10, 120, 240)]
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    assert [p.image.getpixel((0, 0))[0] for p in load_document(data).pages] == [10, 120, 240]
    chosen = load_document(data, pages="2-3")
    assert [p.number for p in chosen.pages] == [1, 2] and chosen.page_count == 3


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    document = load_document(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    assert len(document.pages) == 1
    red, _, blue = document.pages[0].image.getpixel((5, 5))
    assert red > 200 and blue < 50


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    page = load_document(encode(image, "JPEG", exif=exif.tobytes())).pages[0].image
    assert page.size == (20, 60)


@pytest.mark.parametrize(
    "image, expected",
    [
        (Image.new("RGBA", (8, 8), (0, 0, 0, 0)), (255, 255, 255)),  # transparent -> white background
        (Image.new("LA", (8, 8), (0, 255)), (0, 0, 0)),
        (Image.new("L", (8, 8), 77), (77, 77, 77)),
        (Image.new("1", (8, 8), 1), (255, 255, 255)),
        (Image.new("CMYK", (8, 8), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("P", (8, 8), 0), (0, 0, 0)),
    ],
    ids=["RGBA", "LA", "L", "1", "CMYK", "P"],
)
def test_modes_are_converted_to_rgb(image, expected):
    fmt = "JPEG" if image.mode == "CMYK" else "TIFF" if image.mode in ("LA",) else "PNG"
    page = load_document(encode(image, fmt)).pages[0].image
    assert page.mode == "RGB"
    assert tuple(abs(a - b) <= 2 for a, b in zip(page.getpixel((4, 4)), expected)) == (True,) * 3


def test_sixteen_bit_greyscale_is_scaled_to_eight_bit():
    array = np.full((10, 10), 65535, dtype=np.uint16)
    array[:, :5] = 32768
    image = Image.fromarray(array)
    assert image.mode.startswith("I;16")
    page = load_document(encode(image, "PNG")).pages[0].image
    assert page.getpixel((8, 5)) == (255, 255, 255)
    assert abs(page.getpixel((2, 5))[0] - 128) <= 1


def test_pdf_renders_at_requested_dpi():
    document = load_document(pdf_bytes([(612, 792), (300, 200)]), dpi=100)
    assert document.kind == "pdf" and document.page_count == 2
    assert [p.image.size for p in document.pages] == [(850, 1100), (417, 278)]
    assert all(p.dpi == 100 for p in document.pages) and document.pages[0].warnings == []


def test_default_dpi_is_200():
    page = load_document(pdf_bytes([(72, 144)])).pages[0]
    assert page.image.size == (200, 400) and page.dpi == 200


def test_huge_pdf_page_is_rendered_at_lower_dpi_with_a_warning():
    page = load_document(pdf_bytes([(2000, 1000)]), dpi=200).pages[0]
    assert max(page.image.size) <= 4500 and max(page.image.size) >= 4490
    assert page.dpi < 200
    assert "instead of 200 dpi" in page.warnings[0]


def test_pdf_page_selection():
    document = load_document(pdf_bytes([(100, 100)] * 5), pages="2, 4-5", dpi=72)
    assert [p.number for p in document.pages] == [1, 3, 4]


@pytest.mark.parametrize(
    "selection, expected",
    [(None, [0, 1, 2, 3, 4, 5, 6, 7]), ("", [0, 1, 2, 3, 4, 5, 6, 7]), ("1-3,7", [0, 1, 2, 6]),
     ("3", [2]), ("7-", [6, 7]), ("2,2,1", [1, 0]), ("6-20", [5, 6, 7])],
)
def test_parse_page_selection(selection, expected):
    assert parse_page_selection(selection, 8) == expected


@pytest.mark.parametrize("selection, message", [
    ("a-b", "Cannot read page selection"), ("0", "starts below 1"), ("5-2", "is empty"),
    ("9", r"Page 9 does not exist: the document has 8 page\(s\)"),
])
def test_bad_page_selection_is_explained(selection, message):
    with pytest.raises(DocumentError, match=message):
        parse_page_selection(selection, 8)


def test_byte_limit_names_itself():
    with pytest.raises(DocumentError, match=r"max_bytes") as caught:
        load_document(encode(Image.new("RGB", (50, 50)), "BMP"), limits=Limits(max_bytes=1000))
    assert caught.value.code == "too_large" and caught.value.status == 413


def test_page_limit_names_itself():
    with pytest.raises(DocumentError, match=r"max_pages"):
        load_document(pdf_bytes([(50, 50)] * 4), limits=Limits(max_pages=3))


def test_pixel_limit_guards_decompression_bombs():
    # A tiny PNG declaring 20000x20000 pixels: refused from its header, before decoding.
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < 100_000
    with pytest.raises(DocumentError, match=r"max_pixels") as caught:
        load_document(bomb)
    assert caught.value.status == 413


def test_pixel_limit_applies_to_pdf_pages():
    with pytest.raises(DocumentError, match=r"max_pixels"):
        load_document(pdf_bytes([(612, 792)]), limits=Limits(max_pixels=1_000_000))


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([(100, 100)]))))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def pageless_pdf() -> bytes:
    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data, code, message",
    [
        (b"", "empty_file", "empty"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "unsupported_type", "HTML"),
        (b"just some text", "unsupported_type", "Unrecognised file type"),
        (encode(Image.new("RGB", (300, 300), "white"), "PNG")[:200], "corrupt_image", "corrupt or truncated"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "corrupt_image", "corrupt or truncated"),
        (b"%PDF-1.7\n this is not really a pdf", "corrupt_pdf", "damaged"),
        (encrypted_pdf(), "encrypted_pdf", "encrypted"),
        (pageless_pdf(), "empty_pdf", "no pages"),
    ],
    ids=["zero-bytes", "html-as-png", "text", "truncated-png", "broken-jpeg", "broken-pdf", "encrypted-pdf",
         "no-pages"],
)
def test_bad_input_gets_a_clear_error(data, code, message):
    with pytest.raises(DocumentError, match=message) as caught:
        load_document(data)
    assert caught.value.code == code and caught.value.status == 400


def test_type_comes_from_content_not_extension(tmp_path):
    pdf_named_jpg = tmp_path / "scan.jpg"
    pdf_named_jpg.write_bytes(pdf_bytes([(72, 72)]))
    html_named_png = tmp_path / "page.png"
    html_named_png.write_text("<html><script>alert(1)</script></html>")
    assert load_document(pdf_named_jpg, dpi=72).kind == "pdf"
    with pytest.raises(DocumentError, match="not an image or PDF"):
        load_document(html_named_png)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DocumentError, match="No such file: nope.png"):
        load_document(tmp_path / "nope.png")
