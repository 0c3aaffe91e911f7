"""Model families: prompts, output parsing and box conventions, one module per family.

Families import no torch or transformers: they only build prompts and read text, so the same
family serves a local model and a server.
"""
from __future__ import annotations

from .base import Family, ImageLimits, Parsed, Request
from .deepseek_ocr import FAMILY as DEEPSEEK_OCR
from .dots import FAMILY as DOTS
from .florence2 import FAMILY as FLORENCE2
from .glm_ocr import FAMILY as GLM_OCR
from .got import FAMILY as GOT
from .lighton import FAMILY as LIGHTON
from .paddleocr_vl import FAMILY as PADDLEOCR_VL
from .qwen2_5_vl import FAMILY as QWEN2_5_VL
from .qwen2_vl import FAMILY as QWEN2_VL
from .qwen3_vl import FAMILY as QWEN3_VL

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (DOTS, QWEN2_VL, QWEN2_5_VL, QWEN3_VL, GOT, PADDLEOCR_VL, LIGHTON, GLM_OCR,
                   FLORENCE2, DEEPSEEK_OCR)
}


def get_family(name: str) -> Family:
    """The family called name; KeyError naming the known families otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; families are {sorted(FAMILIES)}") from None


__all__ = ["FAMILIES", "Family", "ImageLimits", "Parsed", "Request", "get_family"]
