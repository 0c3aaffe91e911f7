"""GLM-OCR (zai-org/GLM-OCR): element-level recognition by task prompt.

Prompts: github.com/zai-org/GLM-OCR glmocr/config.yaml task_prompt_mapping and
examples/finetune/README.md ("Text Recognition:", "Table Recognition:", "Formula Recognition:").
Outputs: text (Markdown); a table as HTML (glmocr/postprocess/result_formatter.py keeps output
that starts with <table); a formula as LaTeX, sometimes inside $$ / \\[ \\] (stripped here, as the
formatter does). No boxes: one element covering the page.
Input size: glmocr/config.yaml page_loader min_pixels 12544 (112*112), max_pixels 71372800, factor
28 (patch 14 x merge 2). Only reported in Request.model_size: nothing is mapped with it.
"""
from __future__ import annotations

from .base import ImageLimits
from .template import BaseFamily

PROMPTS = {
    "text_only": "Text Recognition:",
    "table": "Table Recognition:",
    "formula": "Formula Recognition:",
}


class GlmOcrFamily(BaseFamily):
    name = "glm_ocr"
    modes = ("text_only", "table", "formula")
    prompts = PROMPTS
    factor = 28
    default_limits = ImageLimits(min_pixels=12544, max_pixels=71372800)
    max_new_tokens = 8192  # glmocr/config.yaml page_loader max_tokens
    end_tokens = ("<|user|>", "<|endoftext|>")


FAMILY = GlmOcrFamily()
