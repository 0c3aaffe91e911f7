"""LightOnOCR-2 (lightonai/LightOnOCR-2-1B and its -bbox variants): the page as Markdown.

Prompt: none. The model is sent the image alone (transformers docs/source/en/model_doc/
lighton_ocr.md: the conversation holds only {"type": "image"}), so Request.prompt is "".
Boxes: only the bbox variants locate embedded images, written "![image](image_N.png) x1,y1,x2,y2"
with coordinates normalised to [0, 1000] (model card huggingface.co/lightonai/LightOnOCR-2-1B-bbox
"Image Localization"); relative, so they map with the page size alone.
Elements (our choice): with no located image, one whole-page Text element holds the Markdown (the
model gives no text boxes, and its blocks carry no position worth inventing). With located images,
the Markdown is cut at each image: text runs stay whole-page Text elements and each image becomes
a Picture element between them, so the elements keep the model's reading order.
Input size: images fit in 1540 px on the longest edge (LightOnOCR-2 paper, arXiv 2601.14251),
sides rounded up to the 28 px patch grid; only reported, never used to map.
"""
from __future__ import annotations

import math
import re

from ..schema import Element
from .base import Box, ImageLimits
from .common import Size, Warnings, make_element, region_element
from .template import BaseFamily
from .repair import collapse_repetition

LONGEST_EDGE = 1540
PATCH = 28
_NUMBER = r"[ \t]*(-?\d+(?:\.\d+)?)[ \t]*"  # on the image's own line
_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\s]*\)(?:[ \t]*[\[(]?" + ",".join([_NUMBER] * 4) + r"[\])]?)?")


class LightOnFamily(BaseFamily):
    name = "lighton"
    smart_resizes = False  # its own size rules: see model_size
    modes = ("text_only",)
    prompts = {"text_only": ""}
    max_new_tokens = 4096
    end_tokens = ("<|im_end|>", "<|endoftext|>", "</s>")

    def model_size(self, width: int, height: int, limits: ImageLimits) -> Size:
        scale = min(1.0, LONGEST_EDGE / max(width, height))
        return (math.ceil(int(width * scale) / PATCH) * PATCH, math.ceil(int(height * scale) / PATCH) * PATCH)

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        text, warning = collapse_repetition(text)
        log.add(warning)
        elements: list[Element] = []
        position = 0
        for match in _IMAGE.finditer(text):
            elements.extend(_text_run(text[position:match.start()], page_size))
            position = match.end()
            if match.group(1) is None:
                continue  # an image reference without a box (non-bbox checkpoint): no location
            box = [float(match.group(i)) for i in range(1, 5)]
            picture = make_element(box, (1000, 1000), page_size, "Picture", "", log)
            if picture:
                elements.append(picture)
        elements.extend(_text_run(text[position:], page_size))
        return elements


def _text_run(markdown: str, page_size: Size) -> list[Element]:
    markdown = markdown.strip()
    return [region_element(None, page_size, "Text", markdown)] if markdown else []


FAMILY = LightOnFamily()
