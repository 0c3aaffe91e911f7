"""Test pages rendered from known text with Pillow's bundled font, and a CER measure."""
from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

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


def normalise(text: str) -> str:
    return "".join(text.split()).casefold()


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate after removing whitespace and case."""
    reference = normalise(reference)
    return levenshtein(normalise(hypothesis), reference) / max(1, len(reference))
