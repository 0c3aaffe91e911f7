"""Reading a region the user marks on a page.

Coordinates: the UI shows the page scaled down (`display_image`); the user paints on that copy, so
the mark arrives in displayed-image pixels. `display_to_page` maps it to page pixels, per axis, with
the sizes actually seen, so any resize on the way (ours or the editor's) cancels out. From there the
model's family writes it in its own convention (dots.ocr grounding prompt in model-input pixels,
Qwen2-VL box tokens on 0-1000, GOT's box= in page pixels, Florence-2 location bins). A model
without a region mode reads the cropped region instead, and its boxes are moved back onto the page.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .documents import Document, Page
from .engines import ParseOptions
from .errors import PipelineError
from .schema import Element, PageResult

if TYPE_CHECKING:
    from .pipeline import Pipeline

Box = tuple[int, int, int, int]
DISPLAY_MAX_SIDE = 1600  # the marking canvas shows pages at most this long on their longer side
# A cropped region is read on a white margin of this fraction of its longer side (at least
# CROP_MARGIN_MIN px): layout detectors and VLMs are trained on pages with margins, and a crop cut
# tight around a title line is otherwise taken for a picture.
CROP_MARGIN_FRACTION, CROP_MARGIN_MIN = 0.1, 16


def display_image(page: Image.Image, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """The page as the marking canvas shows it: scaled down (aspect kept) to fit max_side."""
    width, height = page.size
    scale = min(1.0, max_side / max(width, height))
    if scale == 1.0:
        return page
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return page.resize(size, Image.Resampling.LANCZOS)


def painted_box(layer: np.ndarray | Image.Image) -> Box | None:
    """The rectangle around everything painted on a layer (alpha > 0), in the layer's pixels, as
    [x1, y1, x2, y2) with exclusive ends; None for an empty layer."""
    pixels = np.asarray(layer)
    if pixels.ndim != 3 or pixels.shape[2] != 4:
        raise ValueError(f"a paint layer must be RGBA, got an array of shape {pixels.shape}")
    painted = pixels[:, :, 3] > 0
    if not painted.any():
        return None
    rows, columns = np.flatnonzero(painted.any(axis=1)), np.flatnonzero(painted.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def display_to_page(box: tuple[float, float, float, float], display_size: tuple[int, int],
                    page_size: tuple[int, int]) -> Box:
    """A box in displayed-image pixels -> integer page pixels (each axis scaled by its own ratio,
    halves rounded up), clipped to the page."""
    (dw, dh), (pw, ph) = display_size, page_size
    sx, sy = pw / dw, ph / dh
    x1, y1, x2, y2 = (math.floor(v + 0.5) for v in (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
    x1, x2 = min(max(x1, 0), pw), min(max(x2, 0), pw)
    y1, y2 = min(max(y1, 0), ph), min(max(y2, 0), ph)
    if x2 <= x1 or y2 <= y1:
        raise PipelineError("bad_region", "The marked region is empty or outside the page.")
    return x1, y1, x2, y2


def editor_region(value: dict | None, page_size: tuple[int, int]) -> Box | None:
    """An image editor's value ({"background", "layers", "composite"}, numpy RGBA) -> the painted
    region in page pixels, or None when nothing is painted. Layers cover the canvas, which is the
    displayed page, so their size is the displayed size."""
    if not value:
        return None
    boxes = []
    display_size = None
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        pixels = np.asarray(layer)
        box = painted_box(pixels)
        if box is not None:
            boxes.append(box)
            display_size = (pixels.shape[1], pixels.shape[0])
    if not boxes or display_size is None:
        return None
    union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return display_to_page(union, display_size, page_size)


_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?")


def parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    """'x1, y1, x2, y2' (page pixels; brackets and parentheses allowed) -> a box; empty -> None."""
    if not text or not text.strip():
        return None
    stripped = re.sub(r"[()\[\],]", " ", text)
    values = stripped.split()
    if len(values) != 4 or not all(_NUMBERS.fullmatch(v) for v in values):
        raise PipelineError("bad_region", "A region is four numbers: x1, y1, x2, y2 in page pixels.")
    x1, y1, x2, y2 = (float(v) for v in values)
    if x2 <= x1 or y2 <= y1:
        raise PipelineError("bad_region", "A region needs x1 < x2 and y1 < y2.")
    return x1, y1, x2, y2


def box_from_values(values) -> Box:
    """A box given as four numbers [x1, y1, x2, y2] (the API's form), or a PipelineError."""
    if (not isinstance(values, (list, tuple)) or len(values) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)):
        raise PipelineError("bad_region", "A region is four numbers: [x1, y1, x2, y2] in page pixels.")
    x1, y1, x2, y2 = (float(v) for v in values)
    if x2 <= x1 or y2 <= y1:
        raise PipelineError("bad_region", "A region needs x1 < x2 and y1 < y2.")
    return x1, y1, x2, y2


def format_box(box: Box) -> str:
    return ", ".join(str(int(v)) for v in box)


@dataclass
class RegionResult:
    box: Box  # the region, page pixels
    text: str  # Markdown of what the model read there
    elements: list[Element]  # page pixels
    model: str
    mode: str
    method: str  # "region": the model was given the region; "crop": it read the cropped region
    prompt: str | None  # the region request as the model's family wrote it (None for crops)
    result: PageResult  # the model's page result (for crops: in the crop's pixels)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "text": self.text, "elements": [e.to_dict() for e in self.elements],
                "model": self.model, "mode": self.mode, "method": self.method, "prompt": self.prompt,
                "raw_output": self.result.raw_output, "timings": dict(self.result.timings),
                "tokens": dict(self.result.tokens), "warnings": list(self.warnings)}


def read_region(pipeline: Pipeline, page: Page, region: tuple[float, float, float, float],
                options: ParseOptions = ParseOptions()) -> RegionResult:
    """The text inside region (page pixels): asked of the model directly where its family has a
    region mode, else read from the crop, with boxes mapped back onto the page."""
    from .families.common import page_region

    try:
        box = page_region(region, page.size)
    except ValueError as error:
        raise PipelineError("bad_region", f"Cannot read that region: {error}.") from None
    spec = pipeline.spec
    if "region_text" in spec.modes:
        document = Document(name="page", kind="image", pages=[page], page_count=1)
        result = pipeline.parse_pages(document, "region_text", dataclasses.replace(options, region=box)).pages[0]
        return RegionResult(box, result.markdown, list(result.elements), spec.key, "region_text", "region",
                            region_prompt(pipeline, page.size, box), result, list(result.warnings))
    crop, margin = margined_crop(page.image, box)
    mode = spec.crop_mode if spec.crop_mode in spec.modes else spec.default_mode
    document = Document(name="region", kind="image", pages=[Page(crop, page.number, page.dpi)], page_count=1)
    result = pipeline.parse_pages(document, mode, options).pages[0]
    elements = [moved for e in result.elements if (moved := crop_to_page(e, box, margin)) is not None]
    return RegionResult(box, result.markdown, elements, spec.key, mode, "crop", None, result, list(result.warnings))


def margined_crop(image: Image.Image, box: Box) -> tuple[Image.Image, int]:
    """The region cut out of the page and set on a white margin; (image, margin in px)."""
    region = image.crop(box)
    margin = max(CROP_MARGIN_MIN, round(CROP_MARGIN_FRACTION * max(region.size)))
    canvas = Image.new("RGB", (region.width + 2 * margin, region.height + 2 * margin), "white")
    canvas.paste(region, (margin, margin))
    return canvas, margin


def crop_to_page(element: Element, box: Box, margin: int) -> Element | None:
    """An element read on the margined crop, moved onto the page and clipped to the region."""
    dx, dy = box[0] - margin, box[1] - margin
    x1, y1, x2, y2 = element.bbox
    x1, x2 = max(x1 + dx, box[0]), min(x2 + dx, box[2])
    y1, y2 = max(y1 + dy, box[1]), min(y2 + dy, box[3])
    if x2 <= x1 or y2 <= y1:
        return None  # it lay in the margin
    return Element((x1, y1, x2, y2), element.category, element.text)


def region_prompt(pipeline: Pipeline, page_size: tuple[int, int], box: Box) -> str | None:
    """The region request as the family writes it for this engine (prompt, plus GOT's box=)."""
    from .families import ImageLimits, get_family

    try:
        family = get_family(pipeline.spec.family)
    except KeyError:
        return None
    engine = pipeline.engine
    limits = ImageLimits(engine.min_pixels, engine.max_pixels)
    request = family.request("region_text", page_size[0], page_size[1], limits, region=box)
    extra = f" (processor: {request.processor_kwargs})" if request.processor_kwargs else ""
    return request.prompt + extra
