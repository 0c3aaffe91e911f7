"""What every engine offers the pipeline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..documents import Page
from ..schema import PageResult


@dataclass(frozen=True)
class ParseOptions:
    """Per-request knobs. Engines ignore the ones that do not apply to them."""

    min_pixels: int | None = None
    max_pixels: int | None = None
    max_new_tokens: int | None = None


class Engine(Protocol):
    name: str

    def load(self) -> float:
        """Load weights if not yet loaded; returns the seconds it took (0.0 when already loaded)."""

    def parse_page(self, page: Page, mode: str, options: ParseOptions) -> PageResult:
        """Elements in original-page pixels, in reading order; markdown is filled by the pipeline."""
