"""Qwen2-VL: plain-text reading, a free prompt, and reading a marked region.

Boxes in and out are written <|box_start|>(x1,y1),(x2,y2)<|box_end|>, optionally after
<|object_ref_start|>label<|object_ref_end|>, with coordinates relative to the image on a 0-1000
scale (maintainer answer in github.com/QwenLM/Qwen3-VL/issues/9 "normalized relative coordinates";
example output in github.com/QwenLM/Qwen3-VL/issues/1871; conversion x/1000*W in
github.com/QwenLM/Qwen3-VL/issues/189). They are special tokens, so the engine must keep them when
decoding (Request.keep_special_tokens).
Input size: transformers src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py smart_resize,
factor patch 14 x merge 2 = 28, processor defaults min_pixels 56*56, max_pixels 28*28*1280.
Order: one answer per page, nothing to order.
"""
from __future__ import annotations

import re

from ..schema import Element
from .base import Box, ImageLimits
from .common import Size, Warnings, free_label_category, half_up, make_element, strip_tokens
from .template import BaseFamily

# github.com/QwenLM/Qwen2.5-VL cookbooks/ocr.ipynb (the Qwen2-VL repository, renamed): plain OCR.
PROMPT_READ_ALL = "Read all the text in the image."
# Our wording around Qwen2-VL's box syntax (its referring input format, 0-1000 relative).
PROMPT_READ_REGION = "Read all the text in the region <|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>."

_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
_GROUNDED = re.compile(
    r"(?:<\|object_ref_start\|>(?P<label>.*?)<\|object_ref_end\|>)?\s*"
    rf"<\|box_start\|>\s*\({_NUMBER},{_NUMBER}\)\s*,\s*\({_NUMBER},{_NUMBER}\)\s*<\|box_end\|>",
    re.DOTALL,
)
_GROUNDING_TOKENS = ("<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>")


def to_thousandths(region: Box, page_size: Size) -> tuple[int, int, int, int]:
    """A page-pixel box on the 0-1000 relative scale Qwen2-VL and Qwen3-VL use."""
    w, h = page_size
    x1, y1, x2, y2 = region
    return (min(1000, half_up(x1 / w * 1000)), min(1000, half_up(y1 / h * 1000)),
            min(1000, half_up(x2 / w * 1000)), min(1000, half_up(y2 / h * 1000)))


class Qwen2VLFamily(BaseFamily):
    name = "qwen2_vl"
    modes = ("text_only", "free_prompt", "region_text")
    prompts = {"text_only": PROMPT_READ_ALL}
    factor = 28
    default_limits = ImageLimits(min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    max_new_tokens = 4096
    end_tokens = ("<|im_end|>", "<|endoftext|>")
    special_token_modes = frozenset({"free_prompt"})

    def region_prompt(self, region: Box, page_size: Size, model_size: Size) -> str:
        x1, y1, x2, y2 = to_thousandths(region, page_size)
        return PROMPT_READ_REGION.format(x1=x1, y1=y1, x2=x2, y2=y2)

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        if mode == "free_prompt" and "<|box_start|>" in text:
            return parse_grounding(text, page_size, log)
        return super().parse_elements(strip_tokens(text, _GROUNDING_TOKENS), mode, page_size,
                                      model_size, region, log)

    def markdown(self, text: str, mode: str, elements: list[Element]) -> str:
        if mode != "free_prompt":
            return super().markdown(text, mode, elements)
        return strip_tokens(_GROUNDED.sub(lambda m: m.group("label") or "", text), _GROUNDING_TOKENS).strip()


def parse_grounding(text: str, page_size: Size, log: Warnings) -> list[Element]:
    """One element per <|box_start|> box; its label (the last object ref) is the text."""
    elements = []
    label = ""
    for match in _GROUNDED.finditer(text):
        label = (match.group("label") or label).strip()
        box = [float(match.group(i)) for i in range(2, 6)]
        element = make_element(box, (1000, 1000), page_size, free_label_category(label), label, log)
        if element:
            elements.append(element)
    return elements


FAMILY = Qwen2VLFamily()
