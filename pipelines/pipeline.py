"""The public Python API: load a pipeline for a catalogue model, parse documents with it."""
from __future__ import annotations

import json
import threading
import time
from typing import Callable, Iterator

from .catalogue import ModelSpec, get_spec
from .documents import DEFAULT_DPI, Document, Limits, Source, load_document
from .engines import Engine, ParseOptions, create_engine
from .errors import EngineCapabilityError
from .model_manager import MANAGER
from .render.markdown import page_markdown
from .schema import DocumentResult, PageResult

ProgressCallback = Callable[[int, int], None]  # (pages done, pages total)


class Pipeline:
    """One catalogue model on one engine. Safe to share between threads (engines serialise runs)."""

    def __init__(self, spec: ModelSpec, engine: Engine, name: str | None = None):
        self.spec = spec
        self.engine = engine
        self.name = name or spec.key  # the model manager's key: model plus engine options

    @property
    def key(self) -> str:
        return self.spec.key

    def load(self) -> float:
        """Load the model (within the memory budget, see model_manager); seconds it took."""
        return MANAGER.ensure_loaded(self.name, self.engine)

    def parse_pages(
        self,
        document: Document,
        mode: str | None = None,
        options: ParseOptions = ParseOptions(),
        on_page: ProgressCallback | None = None,
    ) -> DocumentResult:
        """Parse already-loaded pages (see load_document)."""
        mode = self.spec.check_mode(mode)
        started = time.perf_counter()
        pages: list[PageResult] = []
        load_s = self.load()
        for done, page in enumerate(document.pages, start=1):
            page_load_s = load_s if done == 1 else 0.0  # the first page waited for the model
            page_started = time.perf_counter()
            result = self.engine.parse_page(page, mode, options)
            engine_s = time.perf_counter() - page_started
            result.model = self.spec.key
            result.markdown = page_markdown(result)
            result.timings = {"decode_s": page.decode_s, "load_s": page_load_s, **result.timings,
                              "total_s": page.decode_s + page_load_s + engine_s}
            pages.append(result)
            if on_page:
                on_page(done, len(document.pages))
        return DocumentResult(
            source=document.name, model=self.spec.key, mode=mode, pages=pages,
            timings={"parse_s": time.perf_counter() - started},
        )

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
    ) -> DocumentResult:
        """An image, PDF, path or bytes -> DocumentResult (elements, Markdown, timings per page)."""
        mode = self.spec.check_mode(mode)
        started = time.perf_counter()
        document = load_document(source, dpi=dpi, pages=pages, limits=limits, name=name)
        intake_s = time.perf_counter() - started
        result = self.parse_pages(document, mode, options, on_page)
        result.timings = {"intake_s": intake_s, **result.timings, "total_s": time.perf_counter() - started}
        return result

    def extract_text_only(self, image: Source) -> str:
        """The page's text as Markdown."""
        return self.parse_document(image, "text_only" if "text_only" in self.spec.modes else None).markdown

    def inference(self, image: Source, prompt: str) -> str:
        """The model's raw output for a free prompt about the (first) page."""
        self._require_prompting("cannot_prompt", "follow a prompt")
        page = load_document(image).pages[0]
        self.load()  # through the model manager, like parsing: counted in the memory budget
        return self.engine.inference(page, prompt)

    def chat(self, image: Source, messages: list[dict], stream: bool = False) -> Iterator[str] | str:
        """Answer the last user message about the page, with the whole conversation as context."""
        self._require_prompting("cannot_chat", "chat")
        page = load_document(image).pages[0]
        self.load()
        return self.engine.chat(page, messages, stream=stream)

    def _require_prompting(self, code: str, action: str) -> None:
        if not self.spec.can_chat:
            raise EngineCapabilityError(
                code,
                f"The {self.spec.key!r} engine cannot {action}: it is an OCR pipeline that only reads "
                "text and layout. Pick a vision-language model for prompts and chat.",
            )


_pipelines: dict[tuple[str, str], Pipeline] = {}
_pipelines_lock = threading.Lock()


def load_pipeline(model: str = "classic", **engine_options) -> Pipeline:
    """The pipeline for a catalogue key (or alias); engines are created once per process and options."""
    spec = get_spec(model)
    cache_key = (spec.key, json.dumps(engine_options, sort_keys=True, default=str))
    with _pipelines_lock:
        if cache_key not in _pipelines:
            name = spec.key if not engine_options else f"{spec.key} {cache_key[1]}"
            _pipelines[cache_key] = Pipeline(spec, create_engine(spec, **engine_options), name)
        return _pipelines[cache_key]
