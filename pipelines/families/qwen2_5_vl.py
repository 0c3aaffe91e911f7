"""Qwen2.5-VL (and fine-tunes built on it, e.g. olmOCR-2, Nanonets-OCR2): JSON grounding.

Boxes: JSON {"bbox_2d": [x1, y1, x2, y2], "label": ...} in ABSOLUTE pixels of the resized input
(github.com/QwenLM/Qwen2.5-VL cookbooks/ocr.ipynb plot_text_bounding_boxes divides bbox_2d by the
input size from image_grid_thw * 14; maintainer answer in github.com/QwenLM/Qwen3-VL/issues/940:
boxes refer to the image size finally fed to the model). So the engine must report the size it
really fed (Request.model_size or image_grid_thw * 14) when it differs from model_size().
Input size: smart_resize, factor 28 (patch 14 x merge 2), qwen-vl-utils defaults min_pixels
4*28*28, max_pixels 16384*28*28 (qwen-vl-utils/src/qwen_vl_utils/vision_process.py).
Order: a general VLM is not trained to list layout in reading order, so elements are sorted with
pipelines.layout.reading_order.
"""
from __future__ import annotations

from ..schema import CATEGORIES, Element
from .base import Box, ImageLimits
from .common import (
    Size, Warnings, free_label_category, json_objects, make_element, map_category,
)
from .template import BaseFamily, plain_answer

# github.com/QwenLM/Qwen2.5-VL cookbooks/ocr.ipynb: plain OCR prompt.
PROMPT_READ_ALL = "Read all the text in the image."
# Our prompt (no official layout prompt asks for these 11 categories): JSON grounding in the
# bbox_2d / label shape the Qwen cookbooks use, plus the element's text.
PROMPT_LAYOUT = (
    "Parse the layout of this document page. Output a JSON list with one object per layout "
    'element, in reading order: {"bbox_2d": [x1, y1, x2, y2], "label": category, "text": content}. '
    "The category is one of: Caption, Footnote, Formula, List-item, Page-footer, Page-header, "
    "Picture, Section-header, Table, Text, Title. Write a Table's text as HTML, a Formula's as "
    "LaTeX, any other text as Markdown, and leave a Picture's text empty. Copy the text exactly, "
    "without translating it."
)
NATIVE = {category.lower(): category for category in CATEGORIES}


class Qwen25VLFamily(BaseFamily):
    name = "qwen2_5_vl"
    modes = ("layout_all", "text_only", "free_prompt")
    prompts = {"layout_all": PROMPT_LAYOUT, "text_only": PROMPT_READ_ALL}
    factor = 28
    default_limits = ImageLimits(min_pixels=4 * 28 * 28, max_pixels=16384 * 28 * 28)
    max_new_tokens = 8192
    end_tokens = ("<|im_end|>", "<|endoftext|>")
    sort_reading_order = True
    relative = False  # bbox_2d in input pixels; Qwen3-VL writes 0-1000 relative

    def box_space(self, model_size: Size) -> tuple[float, float]:
        return (1000.0, 1000.0) if self.relative else (float(model_size[0]), float(model_size[1]))

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        grounded = mode == "layout_all" or (mode == "free_prompt" and '"bbox_2d"' in text)
        if not grounded:
            return super().parse_elements(text, mode, page_size, model_size, region, log)
        elements = parse_bbox_2d(text, self.box_space(model_size), page_size, log,
                                 free=mode == "free_prompt")
        if elements is None:
            return plain_answer(text, "Text", page_size, None, log,
                                "the output is not the layout JSON" if mode == "layout_all" else "")
        return elements

    def markdown(self, text: str, mode: str, elements: list[Element]) -> str:
        return text.strip() if mode == "free_prompt" else super().markdown(text, mode, elements)


def parse_bbox_2d(text: str, space: tuple[float, float], page_size: Size, log: Warnings,
                  free: bool = False) -> list[Element] | None:
    """[{"bbox_2d": [...], "label": ..., "text": ...}] -> Elements; boxes in `space` coordinates;
    None when the output holds no JSON object at all.
    free: boxes a free prompt asked for, whose labels are anything ("cat") and become the text."""
    items = json_objects(text, log)
    if items is None:
        return None
    elements = []
    for item in items:
        label = item.get("label", item.get("category", "Text"))
        category = free_label_category(label) if free else map_category(label, NATIVE, log)
        content = item.get("text", item.get("text_content", item.get("content", "")))
        if free and not content and category == "Text":
            content = str(label)
        element = make_element(item.get("bbox_2d", item.get("bbox")), space, page_size, category,
                               content, log)
        if element:
            elements.append(element)
    return elements


FAMILY = Qwen25VLFamily()
