"""Chat about a page: the conversation fitted into the model's context, answers with their boxes.

`Pipeline.chat` runs through here, and so do the REST route and the UI, so all three send the same
conversation to the model and read the same boxes out of its answers.

Trimming: a conversation that would not fit the model's context loses its oldest turns (a turn is
a user message with the answers that follow it). System messages and the current question always
stay. Costs are counted in tokens with the model's own tokenizer where the engine offers one
(`engine.context_window(page, max_new_tokens)`), else in characters.
"""
from __future__ import annotations

import itertools
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from .documents import DEFAULT_DPI, Document, Page, Source, load_document, page_number
from .conversation import ContextWindow, normalise_conversation
from .engines.base import ChatEngine, check_positive
from .errors import PipelineError
from .schema import DocumentResult, Element

if TYPE_CHECKING:
    from .pipeline import Pipeline


# Prompt presets for the Chat tab (and anyone else): label -> prompt.
CHAT_PRESETS: dict[str, str] = {
    "Key fields as JSON": (
        "Extract the key fields of this document (names, dates, identifiers, amounts, totals, "
        "addresses) as one JSON object. Use short field names as keys and copy every value exactly "
        "as printed. Output only the JSON."
    ),
    "Summarise": "Summarise this page in three to five sentences.",
    "Translate": (
        "Translate the text of this page into English. Keep its structure (headings, lists and "
        "tables) in Markdown."
    ),
    "Table to CSV": (
        "Convert the table on this page to CSV, with a header row. Output only the CSV."
    ),
    "Dates and amounts": (
        "Find every date and every amount of money on this page. List each one on its own line "
        "with a few words of context."
    ),
}

PAGE_TEXT_CONTEXT = (
    "The text of the page, as read by {reader} (Markdown; tables in HTML):\n\n{markdown}\n\n"
    "Answer from the page image; use this text to read it accurately."
)

# Grounding in chat answers, per family: Qwen2-VL writes special box tokens, Qwen2.5-VL and
# Qwen3-VL write JSON with bbox_2d (their parsers know each one's coordinate space).
BOX_MARKERS = ("<|box_start|>", '"bbox_2d"')
_QWEN2_BOX = re.compile(
    r"(?:<\|object_ref_start\|>(?P<label>.*?)<\|object_ref_end\|>\s*)?<\|box_start\|>.*?<\|box_end\|>", re.DOTALL)
_REF_TOKENS = re.compile(r"<\|object_ref_(?:start|end)\|>|<\|box_(?:start|end)\|>")


# -- fitting a conversation into the context ---------------------------------------------------


@dataclass(frozen=True)
class FittedHistory:
    messages: list[dict]  # {"role", "content": text}, what goes to the model
    dropped_turns: int
    dropped_messages: int
    used: int  # cost of the kept messages
    window: ContextWindow

    @property
    def note(self) -> str | None:
        """What was left out, for the user; None when everything fitted."""
        if not self.dropped_turns:
            return None
        return (f"The conversation was too long for the model's context: the {self.dropped_turns} oldest "
                f"turn(s) ({self.dropped_messages} messages) were left out. What was sent uses {self.used} "
                f"of the {self.window.limit} {self.window.unit} available.")


def fit_history(messages: list[dict], window: ContextWindow) -> FittedHistory:
    """The conversation without its oldest turns, as few dropped as needed to fit window.limit.

    System messages and the last turn (the question being asked) are always kept; if they alone do
    not fit, PipelineError("context_exceeded") says by how much.
    """
    conversation = normalise_conversation(messages)
    if window.limit <= 0:
        of = f" of the model's {window.context}-{window.unit[:-1]} context" if window.context else " of the context"
        raise PipelineError(
            "context_exceeded",
            f"The page image, the chat template and the answer's budget take all{of}, leaving nothing for "
            "the conversation: lower the image's max pixels or max new tokens.",
        )
    system = [m for m in conversation if m["role"] == "system"]
    turns: list[list[dict]] = []
    for message in conversation:
        if message["role"] == "system":
            continue
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    used = sum(window.cost(m) for m in conversation)
    dropped_turns = dropped_messages = 0
    while used > window.limit and len(turns) > 1:
        oldest = turns.pop(0)
        used -= sum(window.cost(m) for m in oldest)
        dropped_turns += 1
        dropped_messages += len(oldest)
    if used > window.limit:
        what = "The question and the page text" if system else "The question"
        raise PipelineError(
            "context_exceeded",
            f"{what} need {used} {window.unit}, more than the {window.limit} {window.unit} the model's "
            "context leaves for the conversation. Shorten the question or leave out the page text.",
        )
    kept = system + [m for turn in turns for m in turn]
    return FittedHistory(kept, dropped_turns, dropped_messages, used, window)


def context_window(engine: ChatEngine, page: Page, max_new_tokens: int | None = None) -> ContextWindow:
    """The engine's window for this page: tokens where it can count them, else characters."""
    return engine.context_window(page, max_new_tokens)


def with_page_text(messages: list[dict], markdown: str, reader: str) -> list[dict]:
    """The conversation with the page's parsed text as a system message before it."""
    if not markdown.strip():
        return list(messages)
    context = {"role": "system", "content": PAGE_TEXT_CONTEXT.format(reader=reader, markdown=markdown.strip())}
    return [context, *messages]


def page_text_of(result: DocumentResult | None, page_index: int) -> str | None:
    """The Markdown a parse produced for one page (0-based), if it holds that page."""
    if result is None:
        return None
    return next((p.markdown for p in result.pages if p.page == page_index), None)


def fresh_page_text(page: Page, model: str = "classic") -> str:
    """The page parsed now (layout + text) with an OCR model; its Markdown."""
    from .pipeline import load_pipeline

    document = Document(name="page", kind="image", pages=[page], page_count=1)
    pipeline = load_pipeline(model)
    return pipeline.parse_pages(document, pipeline.spec.default_mode).markdown


# -- answers -----------------------------------------------------------------------------------


@dataclass
class ChatReply:
    text: str  # the model's answer, grounding tokens included
    elements: list[Element]  # boxes the answer names, in page pixels
    page: int  # 0-based page of the document
    width: int
    height: int
    model: str
    notes: list[str] = field(default_factory=list)  # e.g. turns left out to fit the context
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def markdown(self) -> str:
        return answer_markdown(self.text)

    def to_dict(self) -> dict:
        return {"answer": self.text, "markdown": self.markdown, "elements": [e.to_dict() for e in self.elements],
                "page": self.page, "width": self.width, "height": self.height, "model": self.model,
                "notes": list(self.notes), "timings": dict(self.timings)}


def answer_elements(family_name: str, text: str, page_size: tuple[int, int],
                    model_size: tuple[int, int] = (0, 0)) -> list[Element]:
    """Boxes in a chat answer, read by the family's own parser and mapped to page pixels.
    An answer without box markers has none (its text is not a page-sized element)."""
    if not any(marker in text for marker in BOX_MARKERS):
        return []
    from .families import get_family

    try:
        family = get_family(family_name)
    except KeyError:
        return []
    if "free_prompt" not in family.modes:
        return []
    return family.parse(text, "free_prompt", page_size, model_size).elements


def answer_markdown(text: str) -> str:
    """An answer for display: Qwen2-VL's box tokens become "label [box N]" (N as drawn on the page),
    and any HTML goes through the allowlist sanitiser."""
    from .render.markdown import safe_text

    numbers = itertools.count(1)

    def box_label(match: re.Match) -> str:
        label = (match.group("label") or "").strip()
        return f"{label} [box {next(numbers)}]" if label else f"[box {next(numbers)}]"

    return safe_text(_REF_TOKENS.sub("", _QWEN2_BOX.sub(box_label, text)))


class ChatStream(Iterator[str]):
    """The answer's text chunks as they are generated; once exhausted, .reply holds the ChatReply.
    .notes (e.g. the trimming note) are known before the first chunk. close() stops generation."""

    def __init__(self, chunks: Iterator[str], finish: Callable[[str, float | None], ChatReply], notes: list[str],
                 release: Callable[[], None] = lambda: None):
        self._chunks = chunks
        self._finish = finish
        self._release = release  # lets the model manager evict the model again; called once
        self._parts: list[str] = []
        self._started = time.perf_counter()
        self._first: float | None = None
        self.notes = notes
        self.reply: ChatReply | None = None

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            if self.reply is None:
                try:
                    self.reply = self._finish("".join(self._parts).strip(), self._first)
                finally:
                    self._done()
            raise
        except BaseException:
            self._done()
            raise
        if self._first is None:
            self._first = time.perf_counter() - self._started
        self._parts.append(chunk)
        return chunk

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        try:
            if close:
                close()
        finally:
            self._done()

    def _done(self) -> None:
        release, self._release = self._release, lambda: None
        release()


@dataclass
class _Prepared:
    page: Page
    fitted: FittedHistory
    load_s: float
    started: float


def _prepare(pipeline: Pipeline, source: Source, messages: list[dict], page: int, page_text: str | bool | None,
             max_new_tokens: int | None, dpi: float, load: Callable[[], float]) -> _Prepared:
    """Everything before generation; load() loads the model through the manager and keeps it
    loaded until the caller releases it."""
    started = time.perf_counter()
    pipeline._require_prompting("cannot_chat", "chat")
    check_positive("max_new_tokens", max_new_tokens)
    page = page_number(page)
    chosen = load_document(source, dpi=dpi, pages=str(page)).pages[0]
    if chosen.number != page - 1:  # an image object is one page whatever was asked
        raise PipelineError("bad_pages", f"Page {page} does not exist: the document has 1 page.")
    if page_text is True:
        page_text = fresh_page_text(chosen)
    load_s = load()
    if page_text:
        messages = with_page_text(messages, page_text, "OCR")
    fitted = fit_history(messages, context_window(pipeline.engine, chosen, max_new_tokens))
    return _Prepared(chosen, fitted, load_s, started)


def _engine_chat(pipeline: Pipeline, prepared: _Prepared, stream: bool, max_new_tokens: int | None):
    extra = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    return pipeline.engine.chat(prepared.page, prepared.fitted.messages, stream=stream, **extra)


def _reply(pipeline: Pipeline, prepared: _Prepared, text: str, first_token_s: float | None) -> ChatReply:
    page = prepared.page
    width, height = page.size
    timings = {"load_s": prepared.load_s, "total_s": time.perf_counter() - prepared.started}
    if first_token_s is not None:
        timings["first_token_s"] = first_token_s
    return ChatReply(
        text=text, elements=answer_elements(pipeline.spec.family, text, (width, height), chat_model_size(pipeline, page)),
        page=page.number, width=width, height=height, model=pipeline.spec.key,
        notes=[n for n in (prepared.fitted.note,) if n], timings=timings,
    )


def chat_model_size(pipeline: Pipeline, page: Page) -> tuple[int, int]:
    """The size the model sees the page at in chat: the family's resize within the engine's limits."""
    from .families import ImageLimits, get_family

    try:
        family = get_family(pipeline.spec.family)
    except KeyError:
        return (0, 0)
    engine = pipeline.engine
    limits = ImageLimits(engine.min_pixels, engine.max_pixels)
    return family.model_size(*page.size, limits)


def chat_reply(pipeline: Pipeline, source: Source, messages: list[dict], *, page: int = 1,
               page_text: str | bool | None = None, max_new_tokens: int | None = None,
               dpi: float = DEFAULT_DPI) -> ChatReply:
    """Answer the last user message about one page (1-based) of the document, whole.
    page_text: the page's parsed Markdown as context; True parses the page now (classic OCR)."""
    with ExitStack() as pinned:
        prepared = _prepare(pipeline, source, messages, page, page_text, max_new_tokens, dpi,
                            lambda: pinned.enter_context(pipeline.in_use()))
        text = _engine_chat(pipeline, prepared, False, max_new_tokens)
        return _reply(pipeline, prepared, text, None)


def chat_stream(pipeline: Pipeline, source: Source, messages: list[dict], *, page: int = 1,
                page_text: str | bool | None = None, max_new_tokens: int | None = None,
                dpi: float = DEFAULT_DPI) -> ChatStream:
    """Answer the last user message about one page (1-based), chunk by chunk (see ChatStream)."""
    pinned = ExitStack()  # held until the stream ends or is closed
    try:
        prepared = _prepare(pipeline, source, messages, page, page_text, max_new_tokens, dpi,
                            lambda: pinned.enter_context(pipeline.in_use()))
        chunks = _engine_chat(pipeline, prepared, True, max_new_tokens)
    except BaseException:
        pinned.close()
        raise
    notes = [n for n in (prepared.fitted.note,) if n]
    return ChatStream(iter(chunks), lambda text, first: _reply(pipeline, prepared, text, first), notes,
                      release=pinned.close)
