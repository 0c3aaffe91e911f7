"""BaseFamily: the request/parse template every family fills in with its prompts, its resize
rule and, for structured outputs, its parser. Shared steps live here once: mode checks, region and
free-prompt handling, empty output, end tokens, loop removal and reading order.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..layout import reading_order
from ..schema import Element
from .base import Box, ImageLimits, Parsed, Request
from .common import Size, Warnings, check_region, markdown_of, region_element, smart_resize, strip_tokens
from .repair import collapse_repetition

# Reasoning checkpoints (Qwen3-VL Thinking) write their reasoning before the answer.
_THINKING = re.compile(r"^\s*<think>.*?(?:</think>|$)", re.DOTALL)
# More than this many consecutive elements with the same category and text are a loop.
REPEATED_ELEMENT_LIMIT = 4


class BaseFamily:
    """A family sets its prompts and size rules and overrides parse_elements for outputs with
    structure; a plain-text answer needs nothing more (one element covering the page)."""

    name = ""
    modes: tuple[str, ...] = ()
    prompts: Mapping[str, str] = {}
    factor = 28
    default_limits = ImageLimits(min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    max_new_tokens = 4096
    end_tokens: tuple[str, ...] = ()  # end-of-turn tokens that may survive decoding
    special_token_modes: frozenset[str] = frozenset()  # modes whose boxes are special tokens
    sort_reading_order = False  # True when the model's element order is not reading order
    smart_resizes = True  # see families.base.Family; False for families with their own size rules
    server_prompt_prefix = ""
    # Category of a plain-text answer, by mode.
    text_categories: Mapping[str, str] = {"table": "Table", "formula": "Formula", "chart": "Table"}

    def check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise ValueError(f"family {self.name!r} has no mode {mode!r}; modes are {list(self.modes)}")

    def model_size(self, width: int, height: int, limits: ImageLimits) -> Size:
        return smart_resize(
            width, height, factor=self.factor,
            min_pixels=limits.min_pixels or self.default_limits.min_pixels,
            max_pixels=limits.max_pixels or self.default_limits.max_pixels,
        )

    def request(self, mode: str, width: int, height: int, limits: ImageLimits,
                region: Box | None = None, prompt: str | None = None) -> Request:
        self.check_mode(mode)
        size = self.model_size(width, height, limits)
        page = (width, height)
        if mode == "free_prompt":
            if not prompt or not prompt.strip():
                raise ValueError("free_prompt needs the user's prompt text")
            text = prompt
        elif mode == "region_text":
            if region is None:
                raise ValueError("region_text needs a region [x1, y1, x2, y2] in page pixels")
            text = self.region_prompt(check_region(region, page), page, size)
        else:
            text = self.prompts[mode]
        return Request(
            prompt=text, system=self.system_prompt(mode), max_new_tokens=self.max_new_tokens,
            model_size=size, processor_kwargs=self.processor_kwargs(mode, page, region),
            keep_special_tokens=mode in self.special_token_modes,
        )

    def system_prompt(self, mode: str) -> str | None:
        return None

    def region_prompt(self, region: Box, page_size: Size, model_size: Size) -> str:
        raise ValueError(f"family {self.name!r} cannot read a region")

    def processor_kwargs(self, mode: str, page_size: Size, region: Box | None) -> dict[str, Any]:
        return {}

    def parse(self, text: str, mode: str, page_size: tuple[int, int],
              model_size: tuple[int, int], region: Box | None = None) -> Parsed:
        self.check_mode(mode)
        log = Warnings()
        text = _THINKING.sub("", strip_tokens(text or "", self.end_tokens)).strip()
        if not text:
            return Parsed(warnings=["the model returned no text (empty output)"])
        if not model_size or min(model_size) <= 0:  # engine did not say: the family's default resize
            model_size = self.model_size(page_size[0], page_size[1], ImageLimits())
        elements = self.parse_elements(text, mode, page_size, model_size, region, log)
        elements = self._tidy(elements, log)
        if not elements:
            log.add("no usable element in the output")
        return Parsed(elements, self.markdown(text, mode, elements), log.as_list())

    def markdown(self, text: str, mode: str, elements: list[Element]) -> str:
        """Markdown of the page; free-prompt answers override it with the answer itself."""
        return markdown_of(elements)

    def parse_elements(self, text: str, mode: str, page_size: Size, model_size: Size,
                       region: Box | None, log: Warnings) -> list[Element]:
        """Default: the whole answer is one element covering the page (or the asked region)."""
        region = region if mode == "region_text" else None
        return plain_answer(text, self.text_categories.get(mode, "Text"), page_size, region, log)

    def _tidy(self, elements: list[Element], log: Warnings) -> list[Element]:
        """Loops cut inside texts and across elements; reading order where the model lacks it."""
        cleaned: list[Element] = []
        seen: set[tuple] = set()
        for element in elements:
            text, warning = collapse_repetition(element.text)
            log.add(warning)
            key = (element.bbox, element.category, text)
            if key in seen:  # a loop re-emitting an element it already wrote
                log.count("repetition stopped: dropped {n} repeated element(s)")
                continue
            seen.add(key)
            cleaned.append(Element(element.bbox, element.category, text))
        kept = _collapse_runs(cleaned, log)
        if self.sort_reading_order and len(kept) > 1:
            kept = [kept[i] for i in reading_order([e.bbox for e in kept])]
        return kept


def plain_answer(text: str, category: str, page_size: Size, region: Box | None,
                 log: Warnings, unexpected: str = "") -> list[Element]:
    """The answer as one element covering the page or region, loops cut. unexpected: why a
    structured output is read as text instead (said in a warning)."""
    if unexpected:
        log.add(f"{unexpected}: kept the output as one text element")
    text, warning = collapse_repetition(text)
    log.add(warning)
    return [region_element(region, page_size, category, text)]


def _collapse_runs(elements: list[Element], log: Warnings) -> list[Element]:
    """Runs of more than REPEATED_ELEMENT_LIMIT elements with one category and text -> the first."""
    kept: list[Element] = []
    start = 0
    while start < len(elements):
        first, end = elements[start], start + 1
        while (end < len(elements) and first.text
               and (elements[end].category, elements[end].text) == (first.category, first.text)):
            end += 1
        if end - start > REPEATED_ELEMENT_LIMIT:
            kept.append(first)
            log.count("repetition stopped: dropped {n} repeated element(s)", end - start - 1)
        else:
            kept.extend(elements[start:end])
        start = end
    return kept
