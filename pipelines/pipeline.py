"""The public Python API: load a pipeline for a catalogue model, parse documents with it."""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Iterator

from .catalogue import ModelSpec, get_spec
from .documents import DEFAULT_DPI, Document, Limits, Page, Source, load_document
from .engines import Engine, ParseOptions, create_engine, resolve_backend
from .errors import EngineCapabilityError, PipelineError
from .model_manager import MANAGER
from .render.markdown import page_markdown
from .schema import DocumentResult, PageResult

ProgressCallback = Callable[[int, int], None]  # (pages done, pages total)
ResultCallback = Callable[[PageResult], None]  # each page's result as soon as it is done
# How a failed page says so: the first of its warnings starts with this, then the error's message.
FAILED_PAGE = "page failed: "


class Pipeline:
    """One catalogue model on one engine. Safe to share between threads (engines serialise runs)."""

    def __init__(self, spec: ModelSpec, engine: Engine, name: str | None = None):
        self.spec = spec
        self.engine = engine
        self.name = name or spec.key  # the model manager's key: model plus engine options
        self._pool: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @property
    def key(self) -> str:
        return self.spec.key

    def load(self) -> float:
        """Load the model (within the memory budget, see model_manager); seconds it took."""
        return MANAGER.ensure_loaded(self.name, self.engine)

    def in_use(self):
        """A context in which the model is loaded and the manager will not evict it; yields the
        seconds loading took. Every request holds one while it runs the engine."""
        return MANAGER.using(self.name, self.engine)

    def parse_pages(
        self,
        document: Document,
        mode: str | None = None,
        options: ParseOptions = ParseOptions(),
        on_page: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> DocumentResult:
        """Parse already-loaded pages (see load_document).

        Engines that serve several requests at once (the openai backend: `max_in_flight`) get up
        to that many pages at a time; results come back in page order. on_page(done, total) and
        on_result(page) are called on the caller's thread as each page finishes, in any order.
        A page the engine fails with a PipelineError (e.g. the server went away) becomes an
        empty PageResult whose warnings start with FAILED_PAGE, and the document says which
        pages failed; the other pages are kept. If every page fails, that error is raised.
        """
        mode = self.spec.check_mode(mode)
        started = time.perf_counter()
        with self.in_use() as load_s:
            return self._parse_loaded(document, mode, options, on_page, on_result, load_s, started)

    def _parse_loaded(self, document: Document, mode: str, options: ParseOptions, on_page: ProgressCallback | None,
                      on_result: ResultCallback | None, load_s: float, started: float) -> DocumentResult:
        total = len(document.pages)
        in_flight = min(total, max(1, self.engine.max_in_flight))
        results: list[PageResult | None] = [None] * total
        errors: dict[int, PipelineError] = {}

        def finished(index: int, outcome: PageResult | PipelineError) -> None:
            if isinstance(outcome, PipelineError):
                errors[index] = outcome
                outcome = _failed_page(document.pages[index], self.spec.key, mode, outcome)
            results[index] = outcome
            done = sum(r is not None for r in results)
            if on_result:
                on_result(outcome)
            if on_page:
                on_page(done, total)
            document.pages[index].release()  # a rendered PDF page is not kept: memory stays a few pages

        # The first page waited for the model.
        if in_flight == 1:
            for index, page in enumerate(document.pages):
                finished(index, self._parse_one(page, mode, options, load_s if index == 0 else 0.0))
        else:
            relay = _OrderedText(options.on_text, total) if options.on_text else None
            futures = {}
            for index, page in enumerate(document.pages):
                page_options = dataclasses.replace(options, on_text=relay.writer(index)) if relay else options
                futures[self._executor().submit(
                    self._parse_one, page, mode, page_options, load_s if index == 0 else 0.0)] = index
            try:
                for future in as_completed(futures):
                    index = futures[future]
                    finished(index, future.result())
                    if relay:
                        relay.finish(index)
            finally:
                for future in futures:
                    future.cancel()  # pages not yet started when the caller gave up
        if errors and len(errors) == total:
            raise errors[min(errors)]
        warnings = []
        if errors:
            numbers = ", ".join(str(document.pages[i].number + 1) for i in sorted(errors))
            first = errors[min(errors)]
            warnings.append(f"{len(errors)} of {total} page(s) failed and hold no elements (page {numbers}): "
                            f"{first.message}")
        return DocumentResult(
            source=document.name, model=self.spec.key, mode=mode, pages=list(results),  # type: ignore[arg-type]
            timings={"parse_s": time.perf_counter() - started}, warnings=warnings,
        )

    def _parse_one(self, page: Page, mode: str, options: ParseOptions, load_s: float) -> PageResult | PipelineError:
        """One page through the engine, with Markdown and timings; a PipelineError is returned, not raised."""
        page_started = time.perf_counter()
        try:
            result = self.engine.parse_page(page, mode, options)
        except PipelineError as error:
            return error
        engine_s = time.perf_counter() - page_started
        result.model = self.spec.key
        result.markdown = page_markdown(result)
        result.timings = {"decode_s": page.decode_s, "load_s": load_s, **result.timings,
                          "total_s": page.decode_s + load_s + engine_s}
        return result

    def _executor(self) -> ThreadPoolExecutor:
        """One pool per pipeline: every document (UI users, CLI files) shares the engine's in-flight limit."""
        with self._executor_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.engine.max_in_flight,
                                                thread_name_prefix=f"chatvlmllm-{self.spec.key}")
            return self._pool

    def parse_document(
        self,
        source: Source,
        mode: str | None = None,
        *,
        dpi: float = DEFAULT_DPI,
        pages: str | None = None,
        limits: Limits = Limits(),
        options: ParseOptions = ParseOptions(),
        on_page: ProgressCallback | None = None,
        name: str | None = None,
        on_result: ResultCallback | None = None,
    ) -> DocumentResult:
        """An image, PDF, path or bytes -> DocumentResult (elements, Markdown, timings per page)."""
        mode = self.spec.check_mode(mode)
        started = time.perf_counter()
        document = load_document(source, dpi=dpi, pages=pages, limits=limits, name=name)
        intake_s = time.perf_counter() - started
        result = self.parse_pages(document, mode, options, on_page, on_result)
        result.timings = {"intake_s": intake_s, **result.timings, "total_s": time.perf_counter() - started}
        return result

    def extract_text_only(self, image: Source) -> str:
        """The page's text as Markdown."""
        return self.parse_document(image, "text_only" if "text_only" in self.spec.modes else None).markdown

    def inference(self, image: Source, prompt: str) -> str:
        """The model's raw output for a free prompt about the (first) page."""
        self._require_prompting("cannot_prompt", "follow a prompt")
        page = load_document(image).pages[0]
        with self.in_use():  # through the model manager, like parsing: counted in the memory budget
            return self.engine.inference(page, prompt)

    def chat(self, image: Source, messages: list[dict], stream: bool = False, *, page: int = 1,
             page_text: str | bool | None = None, max_new_tokens: int | None = None) -> Iterator[str] | str:
        """Answer the last user message about a page (1-based, for PDFs), with the whole conversation
        as context; the oldest turns are left out where it would not fit the model's context.
        page_text: the page's parsed Markdown, sent as context (True: parse it now with the classic
        OCR engine). stream=True gives a ChatStream: text chunks, then .reply with the boxes the
        answer names and notes (see pipelines.chat)."""
        from .chat import chat_reply, chat_stream

        if stream:
            return chat_stream(self, image, messages, page=page, page_text=page_text, max_new_tokens=max_new_tokens)
        return chat_reply(self, image, messages, page=page, page_text=page_text, max_new_tokens=max_new_tokens).text

    def _require_prompting(self, code: str, action: str) -> None:
        if not self.spec.can_chat:
            raise EngineCapabilityError(
                code,
                f"The {self.spec.key!r} engine cannot {action}: it is an OCR pipeline that only reads "
                "text and layout. Pick a vision-language model for prompts and chat.",
            )


def failed_pages(result: DocumentResult) -> list[int]:
    """0-based numbers of the pages the engine failed (see Pipeline.parse_pages)."""
    return [p.page for p in result.pages if any(w.startswith(FAILED_PAGE) for w in p.warnings)]


def _failed_page(page: Page, model: str, mode: str, error: PipelineError) -> PageResult:
    width, height = page.size
    return PageResult(
        page=page.number, width=width, height=height, model=model, mode=mode,
        timings={"decode_s": page.decode_s, "total_s": page.decode_s},
        warnings=[f"{FAILED_PAGE}{error.message} [{error.code}]", *page.warnings],
    )


class _OrderedText:
    """Streamed text of pages parsed concurrently, delivered in page order: a page's text goes out
    live once every earlier page is done, and waits in a buffer until then. So a reader of on_text
    sees one page after another, never two pages interleaved."""

    def __init__(self, sink: Callable[[str], None], count: int):
        self.sink = sink
        self.buffers: list[list[str]] = [[] for _ in range(count)]
        self.done = [False] * count
        self.current = 0  # the page streaming live
        self.lock = threading.Lock()

    def writer(self, index: int) -> Callable[[str], None]:
        def write(text: str) -> None:
            with self.lock:
                if index == self.current:
                    self.sink(text)
                else:
                    self.buffers[index].append(text)
        return write

    def finish(self, index: int) -> None:
        with self.lock:
            self.done[index] = True
            while self.current < len(self.done) and self.done[self.current]:
                self.current += 1
                if self.current < len(self.done):
                    for text in self.buffers[self.current]:
                        self.sink(text)
                    self.buffers[self.current] = []


_pipelines: dict[tuple[str, str, str], Pipeline] = {}
_pipelines_lock = threading.Lock()


def load_pipeline(model: str = "classic", backend: str | None = None, **engine_options) -> Pipeline:
    """The pipeline for a catalogue key (or alias); engines are created once per process and options.

    backend: "classic", "transformers" (local weights) or "openai" (OpenAI-compatible servers:
    base_url= or base_urls=[...], served_model=, api_key=, concurrency=, timeout_s=, max_retries=;
    each one left out comes from CHATVLMLLM_OPENAI_<KEY>_* variables). Left out, a VLM uses the
    servers that CHATVLMLLM_OPENAI_<KEY>_BASE_URLS names, else local weights.
    """
    spec = get_spec(model)
    backend = resolve_backend(spec, backend, engine_options)
    label = ""
    if backend == "openai" and "config" not in engine_options:
        from .engines.openai_engine import server_config
        from .engines import SERVER_OPTIONS

        engine_options["config"] = server_config(
            spec, **{k: engine_options.pop(k) for k in SERVER_OPTIONS if k in engine_options})
    if backend == "openai":
        config = engine_options["config"]
        label = f"openai {', '.join(config.base_urls)}"  # never the API key: the name is shown in the UI
    options_key = json.dumps(engine_options, sort_keys=True, default=repr)
    cache_key = (spec.key, backend, options_key)
    with _pipelines_lock:
        if cache_key not in _pipelines:
            shown = {k: v for k, v in engine_options.items() if k != "config"}
            extra = " ".join(part for part in (label, json.dumps(shown, sort_keys=True, default=str) if shown else "") if part)
            name = f"{spec.key} {extra}" if extra else spec.key
            _pipelines[cache_key] = Pipeline(spec, create_engine(spec, backend, **engine_options), name)
        return _pipelines[cache_key]
