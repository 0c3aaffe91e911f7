"""dots.ocr (rednote-hilab/dots.ocr): layout + text as a JSON list, boxes in model-input pixels.

Sources (github.com/rednote-hilab/dots.ocr, commit 36d7248):
- prompts: dots_ocr/utils/prompts.py (dict_promptmode_to_prompt), copied verbatim;
- input size: dots_ocr/utils/image_utils.py smart_resize with dots_ocr/utils/consts.py
  (IMAGE_FACTOR 28, MIN_PIXELS 3136, MAX_PIXELS 11289600);
- output boxes: dots_ocr/utils/layout_utils.py post_process_cells scales [x1, y1, x2, y2] by
  original / smart-resized size; pre_process_bboxes does the inverse for the grounding prompt,
  which dots_ocr/parser.py get_prompt appends as str([x1, y1, x2, y2]).
Order: the prompt asks for human reading order and the model is trained on it, so the model's
order is kept.
"""
from __future__ import annotations

from ..schema import CATEGORIES, Element
from .base import Box, ImageLimits
from .common import Size, Warnings, half_up, json_objects, make_element, map_category
from .template import BaseFamily, plain_answer

# dots_ocr/utils/prompts.py "prompt_layout_all_en"
PROMPT_LAYOUT_ALL = """Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.

1. Bbox format: [x1, y1, x2, y2]

2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].

3. Text Extraction & Formatting Rules:
    - Picture: For the 'Picture' category, the text field should be omitted.
    - Formula: Format its text as LaTeX.
    - Table: Format its text as HTML.
    - All Others (Text, Title, etc.): Format their text as Markdown.

4. Constraints:
    - The output text must be the original text from the image, with no translation.
    - All layout elements must be sorted according to human reading order.

5. Final Output: The entire output must be a single JSON object.
"""
# dots_ocr/utils/prompts.py "prompt_layout_only_en"
PROMPT_LAYOUT_ONLY = """Please output the layout information from this PDF image, including each layout's bbox and its category. The bbox should be in the format [x1, y1, x2, y2]. The layout categories for the PDF document include ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title']. Do not output the corresponding text. The layout result should be in JSON format."""
# dots_ocr/utils/prompts.py "prompt_ocr" (the model leaves out page headers and footers)
PROMPT_OCR = """Extract the text content from this image."""
# dots_ocr/utils/prompts.py "prompt_grounding_ocr"; the box follows it as str([x1, y1, x2, y2])
PROMPT_GROUNDING_OCR = """Extract text from the given bounding box on the image (format: [x1, y1, x2, y2]).\nBounding Box:\n"""

NATIVE = {category.lower(): category for category in CATEGORIES}


class DotsFamily(BaseFamily):
    name = "dots"
    # dots.ocr's own client writes the image placeholder before the prompt ("if no
    # '<|img|><|imgpad|><|endofimg|>' here, vllm v1 will add '\n' here"): sent the same way, the
    # server sees the prompt the model was trained on.
    server_prompt_prefix = "<|img|><|imgpad|><|endofimg|>"
    modes = ("layout_all", "layout_only", "text_only", "region_text")
    prompts = {"layout_all": PROMPT_LAYOUT_ALL, "layout_only": PROMPT_LAYOUT_ONLY, "text_only": PROMPT_OCR}
    factor = 28
    default_limits = ImageLimits(min_pixels=3136, max_pixels=11289600)
    max_new_tokens = 16384  # dots_ocr/parser.py max_completion_tokens
    end_tokens = ("<|endofassistant|>", "<|im_end|>", "<|endoftext|>")

    def region_prompt(self, region: Box, page_size: Size, model_size: Size) -> str:
        # Nearest model pixel (pre_process_bboxes truncates with int(); rounding is the closer box).
        sx, sy = model_size[0] / page_size[0], model_size[1] / page_size[1]
        x1, y1, x2, y2 = region
        return PROMPT_GROUNDING_OCR + str([half_up(x1 * sx), half_up(y1 * sy), half_up(x2 * sx), half_up(y2 * sy)])

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        if mode not in ("layout_all", "layout_only"):
            return super().parse_elements(text, mode, page_size, model_size, region, log)
        elements = parse_layout_json(text, page_size, model_size, log, with_text=mode == "layout_all")
        if elements is None:  # as dots.ocr's parser does, fall back to the text itself
            return plain_answer(text, "Text", page_size, None, log, "the output is not the layout JSON")
        return elements


def parse_layout_json(text: str, page_size: Size, model_size: Size, log: Warnings,
                      with_text: bool) -> list[Element] | None:
    """dots.ocr's [{"bbox": [...], "category": ..., "text": ...}] in model-input pixels; None
    when the output holds no JSON object at all."""
    items = json_objects(text, log)
    if items is None:
        return None
    elements = []
    for item in items:
        category = map_category(item.get("category", "Text"), NATIVE, log)
        content = item.get("text", "") if with_text else ""
        element = make_element(item.get("bbox"), model_size, page_size, category, content, log)
        if element:
            elements.append(element)
    return elements


FAMILY = DotsFamily()
