"""What a model family knows: its prompts, the image size its model sees, and how to read its output.

A family never runs a model. Engines (local transformers, OpenAI-compatible servers) ask the family
for the prompt, run the model, and hand the text back to the family to parse. So dots.ocr served by
vLLM and dots.ocr run locally share one parser and one coordinate mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..schema import Element

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ImageLimits:
    """The pixel budget a model's processor resizes to (None: the family's default)."""

    min_pixels: int | None = None
    max_pixels: int | None = None


@dataclass(frozen=True)
class Request:
    """What an engine sends to the model for one page."""

    prompt: str  # the user turn's text (the image goes before it); "" means: send the image alone
    system: str | None = None
    max_new_tokens: int = 4096
    # The size (width, height) the model will see the page at; boxes in the output refer to it
    # for families whose boxes are in input pixels.
    model_size: tuple[int, int] = (0, 0)
    # Keyword arguments for the processor call, for models whose processor writes the prompt
    # itself (GOT-OCR2: {"format": True} or {"box": [x1, y1, x2, y2]} in page pixels).
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    # Decode with skip_special_tokens=False: the output's boxes are special tokens
    # (Florence-2 <loc_N>, Qwen2-VL <|box_start|>, DeepSeek-OCR <|det|>). The parser drops the rest.
    keep_special_tokens: bool = False


@dataclass
class Parsed:
    """A model's output turned into Elements in ORIGINAL page pixels, plus Markdown and warnings."""

    elements: list[Element] = field(default_factory=list)
    markdown: str = ""
    warnings: list[str] = field(default_factory=list)


class Family(Protocol):
    name: str
    modes: tuple[str, ...]
    # True when the processor smart-resizes pages (sides multiples of a factor, area in a pixel
    # budget) and boxes come out in pixels of that size: a server then gets the page already at
    # model_size, so its own resize leaves it as it is and boxes map back exactly.
    smart_resizes: bool
    server_prompt_prefix: str  # written before the prompt when a server (vLLM, SGLang) runs the model

    def model_size(self, width: int, height: int, limits: ImageLimits) -> tuple[int, int]:
        """The (width, height) the model's processor resizes a page of this size to."""

    def request(self, mode: str, width: int, height: int, limits: ImageLimits,
                region: Box | None = None, prompt: str | None = None) -> Request:
        """Prompt and generation budget for a page of this size (region in page pixels; prompt:
        the user's text, required by free_prompt)."""

    def parse(self, text: str, mode: str, page_size: tuple[int, int],
              model_size: tuple[int, int], region: Box | None = None) -> Parsed:
        """Model output -> Elements in page pixels (clipped, in reading order), Markdown, warnings.
        region: the region_text request's region (page pixels), which the answer's element covers."""
