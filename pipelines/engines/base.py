"""What every engine offers the pipeline."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, runtime_checkable

from ..conversation import ContextWindow
from ..documents import Page
from ..errors import PipelineError
from ..schema import PageResult
from .tesseract_ocr import LANGUAGE_CODES


class EngineNotLoadedError(PipelineError):
    """An engine was asked to run before the model manager loaded it (a bug in the caller)."""

    status = 500

    def __init__(self, name: str):
        super().__init__("not_loaded", f"The {name} model is not loaded; requests load it through the model manager.")


def check_positive(name: str, value) -> None:
    """None, or a whole number of at least 1; a PipelineError naming the option otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise PipelineError("bad_option", f"{name} must be a positive whole number, got {value!r}.")


@dataclass(frozen=True)
class ParseOptions:
    """Per-request knobs. Engines ignore the ones that do not apply to them."""

    min_pixels: int | None = None
    max_pixels: int | None = None
    max_new_tokens: int | None = None
    time_limit_s: float | None = None  # per page; generation stops there with a warning
    region: tuple[float, float, float, float] | None = None  # region_text: a box in page pixels
    prompt: str | None = None  # free_prompt: the user's question or instruction
    # classic: read the text with Tesseract in these languages ("rus", "rus+eng") instead of the
    # embedded English/Chinese recogniser; VLMs read every script and ignore it.
    language: str | None = None
    # Streaming hooks for engines that generate text: each new piece of text goes to on_text;
    # setting stop ends generation early (the page keeps what was generated, with a warning).
    on_text: Callable[[str], None] | None = field(default=None, compare=False)
    stop: threading.Event | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Every door (UI, REST, gradio_client, Python) builds these: refuse nonsense here, once.
        for name in ("min_pixels", "max_pixels", "max_new_tokens"):
            check_positive(name, getattr(self, name))
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise PipelineError("bad_option", f"min_pixels ({self.min_pixels}) is above max_pixels ({self.max_pixels}).")
        if self.language and not LANGUAGE_CODES.match(self.language):
            raise PipelineError("bad_option", "language must be Tesseract codes joined by '+', e.g. 'rus' or "
                                              f"'rus+eng'; got {self.language[:40]!r}.")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise PipelineError("bad_option", f"time_limit_s must be positive, got {self.time_limit_s!r}.")


@runtime_checkable
class ParseEngine(Protocol):
    """What every engine provides. Loading is the model manager's call (pipelines/model_manager.py,
    whose Managed protocol this includes); parse_page runs only on a loaded engine."""

    name: str
    max_in_flight: int  # pages the pipeline may hand over at once (a batching or server engine: more than 1)
    decoding_note: str  # how it generates, for people (the Models tab); "" where that says nothing

    def load(self) -> float:
        """Load weights if not yet loaded; returns the seconds it took (0.0 when already loaded)."""

    def unload(self) -> None:
        """Free the weights; waits for a running request to end."""

    def memory_bytes(self) -> int:
        """Memory it holds now (0 when not loaded)."""

    def expected_bytes(self) -> int:
        """Memory it will hold once loaded (an estimate; 0 if unknown)."""

    def parse_page(self, page: Page, mode: str, options: ParseOptions) -> PageResult:
        """Elements in original-page pixels, in reading order; markdown is filled by the pipeline."""


@runtime_checkable
class ChatEngine(ParseEngine, Protocol):
    """What an engine adds to follow prompts and chat (the catalogue's can_chat models)."""

    min_pixels: int | None  # the image budget it sends pages at (None: the family's default)
    max_pixels: int | None

    def inference(self, page: Page, prompt: str) -> str:
        """The raw answer to one free prompt about the page."""

    def chat(self, page: Page, messages: list[dict], stream: bool = False, **options) -> Iterator[str] | str:
        """The answer to the last user message; text chunks when stream."""

    def context_window(self, page: Page, max_new_tokens: int | None = None) -> ContextWindow:
        """What the conversation may spend, in tokens where it can count them, else characters."""


Engine = ParseEngine  # the name callers knew
