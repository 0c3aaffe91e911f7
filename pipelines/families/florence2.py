"""Florence-2: OCR by task token, optionally with a quadrilateral per text line.

Prompts are task tokens, expanded by the processor (transformers src/transformers/models/florence2/
processing_florence2.py task_prompts_without_inputs / task_prompts_with_input): "<OCR>",
"<OCR_WITH_REGION>", and "<REGION_TO_OCR>" followed by a box as four <loc_N> tokens.
Boxes: <loc_N> with N in 0..999, quantised over the whole image; Florence2PostProcessor.quantize
takes floor(x / (width / 1000)) clamped to 999, dequantize returns (N + 0.5) * width / 1000 (the
bin centre; transformers then truncates with .int(), we round half up like every family).
<OCR_WITH_REGION> writes "text<loc_x1><loc_y1>...<loc_x4><loc_y4>" per line (8 tokens, a quad);
an element's box is the quad's bounding rectangle. The <loc_N> tokens are special tokens, so the
engine must decode that mode with special tokens kept (Request.keep_special_tokens).
transformers docs/source/en/model_doc/florence2.md decodes with skip_special_tokens=False and passes
the original image.size to post_process_generation: bins are relative to the page itself.
Input size: 768 x 768, aspect not kept (the checkpoints' preprocessor_config.json size); boxes are
relative, so mapping needs only the page size.
Order: lines come out roughly top to bottom, not by column, so they are sorted with
pipelines.layout.reading_order.
"""
from __future__ import annotations

import math
import re

from ..schema import Element
from .base import Box, ImageLimits
from .common import Size, Warnings, make_element
from .template import BaseFamily, plain_answer

TASK_OCR = "<OCR>"
TASK_OCR_WITH_REGION = "<OCR_WITH_REGION>"
TASK_REGION_TO_OCR = "<REGION_TO_OCR>"
BINS = 1000

_LOC = r"<loc_(\d+)>"
_LINE = re.compile(r"((?:(?!<loc_).)*?)" + _LOC * 8, re.DOTALL)


def quantize(region: Box, page_size: Size) -> tuple[int, int, int, int]:
    """Page pixels -> Florence-2 location bins, as Florence2PostProcessor.quantize does."""
    w, h = page_size
    x1, y1, x2, y2 = region
    # floor(v * 1000 / size), not floor(v / (size / 1000)): the same bin without float error.
    return tuple(min(BINS - 1, max(0, math.floor(v * BINS / size)))  # type: ignore[return-value]
                 for v, size in ((x1, w), (y1, h), (x2, w), (y2, h)))


class Florence2Family(BaseFamily):
    name = "florence2"
    smart_resizes = False  # its own size rules: see model_size
    modes = ("text_only", "text_regions", "region_text")
    prompts = {"text_only": TASK_OCR, "text_regions": TASK_OCR_WITH_REGION}
    max_new_tokens = 1024  # docs/source/en/model_doc/florence2.md generate(max_new_tokens=1024)
    end_tokens = ("</s>", "<s>", "<pad>")
    special_token_modes = frozenset({"text_regions"})
    sort_reading_order = True

    def model_size(self, width: int, height: int, limits: ImageLimits) -> Size:
        return 768, 768

    def region_prompt(self, region: Box, page_size: Size, model_size: Size) -> str:
        return TASK_REGION_TO_OCR + "".join(f"<loc_{n}>" for n in quantize(region, page_size))

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        if mode != "text_regions":
            return super().parse_elements(re.sub(_LOC, "", text), mode, page_size, model_size, region, log)
        if "<loc_" not in text:
            return plain_answer(text, "Text", page_size, None, log,
                                "no <loc_N> boxes in the output (decode with special tokens kept)")
        elements = []
        end = complete = 0
        for line in _LINE.finditer(text):
            end, complete = line.end(), complete + 1
            xs = [int(line.group(i)) for i in range(2, 10, 2)]
            ys = [int(line.group(i)) for i in range(3, 10, 2)]
            box = [min(xs), min(ys), max(xs), max(ys)]
            element = make_element(box, (BINS, BINS), page_size, "Text", line.group(1), log, offset=0.5)
            if element:
                elements.append(element)
        if text[end:].strip():
            log.add(f"recovered {complete} complete elements from truncated output")
        return elements


FAMILY = Florence2Family()
