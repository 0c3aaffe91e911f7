"""Test pages rendered from known text with Pillow's bundled font, and a CER measure."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipelines import text_metrics

TITLE = "Quarterly Report on River Water Quality"
PARAGRAPHS = [
    "The survey measured oxygen levels at twelve stations along the river during spring.",
    "Most stations met the national standard, although two sites near the old mill did not.",
    "Samples were taken every morning at seven and analysed in the city laboratory.",
]
LEFT_COLUMN = [
    "Alpha column begins here with",
    "a short first paragraph about",
    "measuring the flow of water.",
]
RIGHT_COLUMN = [
    "Beta column continues the story",
    "with notes on temperature and",
    "the colour of the evening sky.",
]


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def render_lines(lines: list[tuple[str, int, int, int]], size: tuple[int, int] = (1240, 1754)) -> Image.Image:
    """A white page with each (text, x, y, font size) drawn in black."""
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    for text, x, y, font_size in lines:
        draw.text((x, y), text, fill="black", font=font(font_size))
    return page


def single_column_page() -> Image.Image:
    lines = [(TITLE, 120, 120, 48)]
    y = 260
    for paragraph in PARAGRAPHS:
        lines.append((paragraph, 120, y, 26))
        y += 80
    return render_lines(lines)


def two_column_page() -> Image.Image:
    lines = [(TITLE, 120, 120, 44)]
    for index, (left, right) in enumerate(zip(LEFT_COLUMN, RIGHT_COLUMN)):
        lines.append((left, 120, 260 + 42 * index, 28))
        lines.append((right, 680, 260 + 42 * index, 28))
    return render_lines(lines)



PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
PDF_RESOLUTION = 150.0  # the PDF's pages are A4 when its images are placed at this dpi

PAGE_ONE = (
    "Quarterly Report on River Water Quality",
    (
        "The survey team visited twelve sampling sites along the river",
        "between March and June. Each site was sampled twice a month,",
        "and the water was tested for nitrates, phosphates and oxygen.",
        "Oxygen levels were healthy at most sites during the spring.",
        "Two sites downstream of the old mill showed higher nitrates.",
        "The team recommends monthly checks at those two sites next year.",
    ),
)
PAGE_TWO = (
    "Notes from the Community Garden Meeting",
    (
        "Forty members came to the autumn meeting in the village hall.",
        "The treasurer said that the seed fund has enough money left",
        "for new tomato plants, onions and a second compost bin.",
        "Volunteers agreed to water the beds every Tuesday evening.",
        "A small shed for tools will be built before the winter rain.",
        "The next meeting will be held on the first Monday of March.",
    ),
)


def render_page(title: str, lines: tuple[str, ...], size: tuple[int, int] = PAGE_SIZE):
    """A white page with a large title and body lines in Pillow's bundled scalable font."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    title_font = font(48)
    body_font = font(32)
    draw.text((120, 160), title, font=title_font, fill="black")
    y = 300
    for line in lines:
        assert 120 + draw.textlength(line, font=body_font) < size[0] - 60, f"line too long: {line!r}"
        draw.text((120, y), line, font=body_font, fill="black")
        y += 56  # 1.75 line spacing, as in a typed report
    return image


def page_text(page: tuple[str, tuple[str, ...]]) -> str:
    title, lines = page
    return "\n".join((title, *lines))


def write_png(path: Path, page=PAGE_ONE) -> Path:
    render_page(*page).save(path)
    return path


def write_pdf(path: Path, pages=(PAGE_ONE, PAGE_TWO)) -> Path:
    images = [render_page(*page) for page in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=PDF_RESOLUTION)
    return path


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Whitespace and case do not count: OCR line breaks and spacing are not reading errors."""
    assert reference.strip(), "empty reference text"
    return text_metrics.character_error_rate(reference, hypothesis, casefold=True)
