"""DeepSeek-OCR and DeepSeek-OCR-2: Markdown with a grounding block before each element.

Prompts: github.com/deepseek-ai/DeepSeek-OCR DeepSeek-OCR-master/DeepSeek-OCR-vllm/config.py
("<image>\\n<|grounding|>Convert the document to markdown.", "<image>\\nFree OCR."), the same in
deepseek-ai/DeepSeek-OCR-2 DeepSeek-OCR2-master/DeepSeek-OCR2-vllm/config.py. "<image>\\n" is the
image placeholder: Request.prompt is the text after it (engines put the image first).
Output: "<|ref|>label<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|>" then the element's Markdown,
boxes relative on a 0-999 scale (run_dpsk_ocr_image.py draw_bounding_boxes: x / 999 * width).
The grounding tags are special tokens: decode with them kept (the reference decodes with
skip_special_tokens=False). Labels seen in the model's output: title, sub_title, text, image,
image_caption, table, table_caption, table_footnote, equation.
Order: the model writes the page as Markdown, in reading order; that order is kept.
Input size: the 1024 x 1024 global view (config.py BASE_SIZE); boxes are relative to the page.
"""
from __future__ import annotations

import re

from ..schema import Element
from .base import Box, ImageLimits
from .common import Size, Warnings, make_element, map_category
from .template import BaseFamily, plain_answer
from .repair import loads_lenient

PROMPT_GROUNDED_MARKDOWN = "<|grounding|>Convert the document to markdown."
PROMPT_FREE_OCR = "Free OCR."
SCALE = 999

NATIVE = {
    "title": "Title", "sub-title": "Section-header", "text": "Text", "image": "Picture",
    "image-caption": "Caption", "table": "Table", "table-caption": "Caption",
    "table-footnote": "Footnote", "equation": "Formula",
}
_BLOCK = re.compile(r"<\|ref\|>(.*?)<\|/ref\|>\s*<\|det\|>(.*?)<\|/det\|>", re.DOTALL)
_GROUNDING_TAGS = re.compile(r"<\|/?(?:ref|det|grounding)\|>")


class DeepSeekOCRFamily(BaseFamily):
    name = "deepseek_ocr"
    smart_resizes = False  # its own size rules: see model_size
    modes = ("layout_all", "text_only")
    prompts = {"layout_all": PROMPT_GROUNDED_MARKDOWN, "text_only": PROMPT_FREE_OCR}
    max_new_tokens = 8192  # config.py / run_dpsk_ocr_image.py max_tokens
    end_tokens = ("<｜end▁of▁sentence｜>", "<|end▁of▁sentence|>", "<|endoftext|>")
    special_token_modes = frozenset({"layout_all"})

    def model_size(self, width: int, height: int, limits: ImageLimits) -> Size:
        return 1024, 1024

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        if mode != "layout_all":
            return super().parse_elements(_GROUNDING_TAGS.sub("", text), mode, page_size,
                                          model_size, region, log)
        if "<|ref|>" not in text:
            return plain_answer(text, "Text", page_size, None, log,
                                "no <|ref|><|det|> blocks in the output (decode with special tokens kept)")
        return parse_grounded_markdown(text, page_size, log)


def parse_grounded_markdown(text: str, page_size: Size, log: Warnings) -> list[Element]:
    blocks = list(_BLOCK.finditer(text))
    elements: list[Element] = []
    for index, block in enumerate(blocks):
        body_end = blocks[index + 1].start() if index + 1 < len(blocks) else len(text)
        body = text[block.end():body_end]
        if index + 1 == len(blocks) and "<|ref|>" in body:
            # Generation stopped inside the next block's tags: that block is lost.
            body = body[:body.index("<|ref|>")]
            log.add(f"recovered {len(blocks)} complete elements from truncated output")
        category = map_category(block.group(1), NATIVE, log)
        try:
            boxes = loads_lenient(block.group(2))
        except ValueError:
            boxes = None
        if isinstance(boxes, list) and boxes and not isinstance(boxes[0], list):
            boxes = [boxes]  # a single box written without the outer brackets
        if not isinstance(boxes, list) or not boxes:
            log.count("dropped {n} element(s) with an invalid box (not 4 numbers with x1<x2, y1<y2)")
            continue
        # An element split over several boxes (a paragraph across columns): the text goes with
        # the first box, the others mark where the rest of it lies.
        for number, box in enumerate(boxes):
            element = make_element(box, (SCALE, SCALE), page_size, category,
                                   body if number == 0 else "", log)
            if element:
                elements.append(element)
    if not blocks:
        log.add("recovered 0 complete elements from truncated output")
    return elements


FAMILY = DeepSeekOCRFamily()
