"""GOT-OCR2 (stepfun-ai/GOT-OCR-2.0-hf in transformers): plain OCR, formatted OCR, a region's OCR.

The processor writes the prompt itself (transformers src/transformers/models/got_ocr2/
processing_got_ocr2.py GotOcr2Processor.__call__ with text=None):
- query "OCR: ", with format=True "OCR with format: " (Markdown / LaTeX output);
- box=[x1, y1, x2, y2] in ORIGINAL image pixels; preprocess_box_annotation turns it into
  int(x / width * 1000) and the query becomes "[x1, y1, x2, y2] OCR: ".
So the engine passes Request.processor_kwargs to the processor call together with the full page
image (the box refers to it); Request.prompt holds the same query, for engines that build it.
No boxes come out. model_size is 1024 x 1024, GOT-OCR2's encoder input (GOT paper; the transformers
image processor class defaults to 384 and takes the size from the checkpoint's config); it only
fills Request.model_size, nothing is mapped with it.
"""
from __future__ import annotations

from typing import Any

from .base import Box, ImageLimits
from .common import Size, page_region
from .template import BaseFamily

QUERY_OCR = "OCR: "
QUERY_FORMAT = "OCR with format: "


class GotFamily(BaseFamily):
    name = "got"
    smart_resizes = False  # its own size rules: see model_size
    modes = ("text_only", "text_formatted", "region_text")
    prompts = {"text_only": QUERY_OCR, "text_formatted": QUERY_FORMAT}
    max_new_tokens = 4096
    end_tokens = ("<|im_end|>", "<|endoftext|>")

    def model_size(self, width: int, height: int, limits: ImageLimits) -> Size:
        return 1024, 1024

    def region_prompt(self, region: Box, page_size: Size, model_size: Size) -> str:
        # The query the processor builds from box=: int() of the 0-1000 relative coordinates.
        w, h = page_size
        x1, y1, x2, y2 = page_region(region, page_size)
        box = [int(x1 / w * 1000), int(y1 / h * 1000), int(x2 / w * 1000), int(y2 / h * 1000)]
        return f"{box} {QUERY_OCR}"

    def processor_kwargs(self, mode: str, page_size: Size, region: Box | None) -> dict[str, Any]:
        if mode == "text_formatted":
            return {"format": True}
        if mode == "region_text" and region is not None:
            # A fresh list: the processor rewrites the box in place.
            return {"box": list(page_region(region, page_size))}
        return {}


FAMILY = GotFamily()
