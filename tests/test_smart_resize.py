"""The project's smart_resize against qwen-vl-utils, the Qwen team's reference for the Qwen-VL
families, over many page sizes and pixel budgets; and where transformers' own version differs."""
from __future__ import annotations

import random

import pytest
from qwen_vl_utils.vision_process import smart_resize as reference
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as transformers_resize

from pipelines.families.common import smart_resize

BUDGETS = [  # (factor, min_pixels, max_pixels)
    (28, 3136, 11_289_600),  # dots.ocr
    (28, 56 * 56, 28 * 28 * 1280),  # Qwen2-VL / Qwen2.5-VL defaults
    (28, 4 * 28 * 28, 256 * 28 * 28),  # a small server budget
    (32, 64 * 64, 16_777_216),  # Qwen3-VL
    (14, 14 * 14, 1024 * 14 * 14),
]


def sizes() -> list[tuple[int, int]]:
    rng = random.Random(7)
    fixed = [(1654, 2339), (2339, 1654), (11, 647), (647, 11), (28, 28), (1, 150), (4500, 23), (1, 1)]
    return fixed + [(rng.randint(1, 6000), rng.randint(1, 6000)) for _ in range(1500)]


@pytest.mark.parametrize("factor, min_pixels, max_pixels", BUDGETS)
def test_equals_qwen_vl_utils_over_many_sizes(factor, min_pixels, max_pixels):
    compared = 0
    for width, height in sizes():
        if max(width, height) / min(width, height) > 200:
            with pytest.raises(ValueError):
                smart_resize(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
            continue
        ours = smart_resize(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
        ref_height, ref_width = reference(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
        assert ours == (ref_width, ref_height), (width, height)
        compared += 1
    assert compared > 1400


def test_transformers_differs_at_extreme_aspect_ratios():
    """Documented in smart_resize: transformers' processor drops qwen-vl-utils' max(factor, …)
    guard, so a page 11 px wide comes out shorter there (448 rows instead of 644)."""
    assert smart_resize(11, 647, factor=28, min_pixels=3136, max_pixels=11_289_600) == (28, 644)
    assert transformers_resize(647, 11, factor=28, min_pixels=3136, max_pixels=11_289_600) == (448, 28)
