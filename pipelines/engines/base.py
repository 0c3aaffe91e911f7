"""What every engine offers the pipeline."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..documents import Page
from ..schema import PageResult


@dataclass(frozen=True)
class ParseOptions:
    """Per-request knobs. Engines ignore the ones that do not apply to them."""

    min_pixels: int | None = None
    max_pixels: int | None = None
    max_new_tokens: int | None = None
    time_limit_s: float | None = None  # per page; generation stops there with a warning
    region: tuple[float, float, float, float] | None = None  # region_text: a box in page pixels
    prompt: str | None = None  # free_prompt: the user's question or instruction
    # Streaming hooks for engines that generate text: each new piece of text goes to on_text;
    # setting stop ends generation early (the page keeps what was generated, with a warning).
    on_text: Callable[[str], None] | None = field(default=None, compare=False)
    stop: threading.Event | None = field(default=None, compare=False)


class Engine(Protocol):
    name: str

    def load(self) -> float:
        """Load weights if not yet loaded; returns the seconds it took (0.0 when already loaded)."""

    def parse_page(self, page: Page, mode: str, options: ParseOptions) -> PageResult:
        """Elements in original-page pixels, in reading order; markdown is filled by the pipeline."""
