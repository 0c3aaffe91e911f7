"""Qwen3-VL: the Qwen2.5-VL JSON grounding, with bbox_2d on a 0-1000 relative scale.

Boxes: relative coordinates normalised to [0, 1000] (maintainer answer in
github.com/QwenLM/Qwen3.8-Flash-Next/issues/4 "grounding coordinates should still be relative
coordinates normalized to [0, 1000]"; github.com/QwenLM/Qwen3-VL/issues/1927 uses the same scale
for boxes in prompts). Relative boxes do not depend on the resize, only on the page size.
Input size: patch 16 x merge 2 = factor 32 (github.com/QwenLM/Qwen3-VL README "image_patch_size
16 for Qwen3-VL", "rounded to the nearest multiple of 32"); pixel budget from the checkpoints'
preprocessor_config.json size {"shortest_edge": 65536, "longest_edge": 16777216}.
Text prompt: github.com/QwenLM/Qwen3-VL README examples, "Read all the text in the image."
Order: sorted with pipelines.layout.reading_order, as for Qwen2.5-VL.
"""
from __future__ import annotations

from .base import ImageLimits
from .qwen2_5_vl import PROMPT_LAYOUT, Qwen25VLFamily

PROMPT_READ_ALL = "Read all the text in the image."


class Qwen3VLFamily(Qwen25VLFamily):
    name = "qwen3_vl"
    prompts = {"layout_all": PROMPT_LAYOUT, "text_only": PROMPT_READ_ALL}
    factor = 32
    default_limits = ImageLimits(min_pixels=65536, max_pixels=16777216)
    relative = True


FAMILY = Qwen3VLFamily()
