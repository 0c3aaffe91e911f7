"""A catalogue model served by OpenAI-compatible servers (vLLM, SGLang, `transformers serve`).

The family writes the prompt and reads the answer exactly as for a local run; only the transport
differs. Requests use the same generation defaults as local runs (greedy: temperature 0, top_p 1;
the family's max_new_tokens) and stream, so ParseOptions.on_text, stop and time_limit_s work.
Pages run concurrently (Pipeline dispatches up to `max_in_flight` at once) over one or several
base URLs; see openai_client for balancing, retries and errors.

Configuration comes from arguments or, for each one left out, the environment (KEY is the
catalogue key in capitals, e.g. DOTS_OCR; a per-model variable wins over the global one):
    CHATVLMLLM_OPENAI_<KEY>_BASE_URLS   comma-separated base URLs, e.g. http://gpu1:8000/v1
    CHATVLMLLM_OPENAI_<KEY>_MODEL       the served model name (default: what /v1/models lists)
    CHATVLMLLM_OPENAI_[<KEY>_]API_KEY   bearer token (default "EMPTY")
    CHATVLMLLM_OPENAI_[<KEY>_]CONCURRENCY, _TIMEOUT_S, _MAX_RETRIES
    CHATVLMLLM_ALLOWED_SERVER_URLS     further base URLs a UI session may choose (none by default)
"""
from __future__ import annotations

import base64
import io
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlparse

from PIL import Image

from ..catalogue import ModelSpec
from ..conversation import ContextWindow, character_window
from ..documents import Page
from ..errors import EngineCapabilityError, ServerRequestError, ServerUnavailableError, UnsupportedModeError
from ..schema import PageResult
from .base import EngineNotLoadedError, ParseOptions
from .streaming import stream_pieces
from .openai_client import STOPPED, TIME_LIMIT, ChatClient, Completion, ServerPool

ENV_PREFIX = "CHATVLMLLM_OPENAI_"
ALLOWED_URLS_ENV = "CHATVLMLLM_ALLOWED_SERVER_URLS"
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_API_KEY = "EMPTY"  # vLLM and SGLang accept any key unless started with --api-key


@dataclass(frozen=True)
class ServerConfig:
    """Where a model is served and how to talk to it (arguments first, then the environment)."""

    base_urls: tuple[str, ...]
    served_model: str | None = None
    api_key: str = DEFAULT_API_KEY
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = 0.5
    # Extra request fields for a particular server, e.g. vLLM's {"top_k": 1} or
    # {"mm_processor_kwargs": {...}}; transformers serve refuses fields it does not know.
    extra_body: dict[str, Any] = field(default_factory=dict)


def env_base_urls(key: str) -> list[str]:
    """The base URLs CHATVLMLLM_OPENAI_<KEY>_BASE_URLS names for a catalogue key ([] if unset)."""
    return _split_urls(os.environ.get(f"{ENV_PREFIX}{key.upper()}_BASE_URLS", ""))


def server_config(spec: ModelSpec, *, base_url: str | None = None, base_urls: list[str] | None = None,
                  served_model: str | None = None, api_key: str | None = None,
                  concurrency: int | None = None, timeout_s: float | None = None,
                  max_retries: int | None = None, backoff_s: float | None = None,
                  extra_body: dict | None = None) -> ServerConfig:
    urls = [*([base_url] if base_url else []), *(base_urls or [])] or env_base_urls(spec.key)
    if not urls:
        raise EngineCapabilityError(
            "no_server",
            f"The openai backend needs the server's address: pass base_url='http://host:8000/v1' (or "
            f"--base-url), or set {ENV_PREFIX}{spec.key.upper()}_BASE_URLS.")

    def setting(name: str, given, convert, default):
        if given is not None:
            return convert(given)
        for variable in (f"{ENV_PREFIX}{spec.key.upper()}_{name}", f"{ENV_PREFIX}{name}"):
            if os.environ.get(variable):
                try:
                    return convert(os.environ[variable])
                except ValueError:
                    raise EngineCapabilityError(
                        "bad_setting", f"{variable}={os.environ[variable]!r} is not a valid {name.lower()}.") from None
        return default

    concurrency = setting("CONCURRENCY", concurrency, int, DEFAULT_CONCURRENCY)
    if concurrency < 1:
        raise EngineCapabilityError("bad_setting", f"concurrency must be at least 1, got {concurrency}.")
    return ServerConfig(
        base_urls=tuple(_normalise_url(u) for u in urls),
        served_model=served_model or os.environ.get(f"{ENV_PREFIX}{spec.key.upper()}_MODEL") or None,
        api_key=setting("API_KEY", api_key, str, DEFAULT_API_KEY),
        concurrency=concurrency,
        timeout_s=setting("TIMEOUT_S", timeout_s, float, DEFAULT_TIMEOUT_S),
        max_retries=setting("MAX_RETRIES", max_retries, int, DEFAULT_MAX_RETRIES),
        backoff_s=0.5 if backoff_s is None else float(backoff_s),
        extra_body=dict(extra_body or {}),
    )


class OpenAIEngine:
    name = "openai"
    decoding_note = "on the server"
    default_max_new_tokens = 1024  # free prompts and chat, as the local engine

    def __init__(self, spec: ModelSpec, config: ServerConfig, max_new_tokens: int | None = None,
                 min_pixels: int | None = None, max_pixels: int | None = None):
        """max_new_tokens, min_pixels, max_pixels: this engine's defaults, as for the local engine
        (a request's ParseOptions override them; the family's own apply where both are unset).
        min/max_pixels must describe the pixel budget the SERVER's processor allows, so that the
        page sent at the family's size passes through it unchanged."""
        from ..families import get_family

        self.spec = spec
        self.config = config
        self.family = get_family(spec.family)
        self.max_new_tokens = max_new_tokens
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.pool = ServerPool(list(config.base_urls), config.api_key, config.timeout_s)
        self.client = ChatClient(self.pool, config.max_retries, config.backoff_s)
        self._served_model = config.served_model
        self._lock = threading.Lock()

    @property
    def max_in_flight(self) -> int:
        """How many pages the pipeline may send at once (all servers together)."""
        return self.config.concurrency

    # -- lifecycle (the model lives on the server: nothing to load or free here) -------------------

    def load(self) -> float:
        """Learn the served model name from GET /v1/models when none was given."""
        with self._lock:
            if self._served_model:
                return 0.0
            started = time.perf_counter()
            url, models = self.pool.list_models()
            urls = ", ".join(self.config.base_urls)
            if url is None:
                raise ServerUnavailableError(
                    "server_unreachable",
                    f"No model server answered GET /models at {urls}. Start one (see README: vLLM / "
                    "SGLang) or correct the base URL.")
            if len(models) != 1:
                raise ServerRequestError(
                    "model_not_found",
                    f"The server at {url} serves {len(models)} models ({', '.join(models) or 'none'}): "
                    f"name one with served_model (--served-model, or {ENV_PREFIX}{self.spec.key.upper()}_MODEL).")
            self._served_model = models[0]
            return time.perf_counter() - started

    def unload(self) -> None:
        """Nothing to free: the weights are on the server."""

    def memory_bytes(self) -> int:
        return 0

    def expected_bytes(self) -> int:
        return 0

    def context_window(self, page: Page, max_new_tokens: int | None = None) -> ContextWindow:
        """In characters: the server's tokenizer is not at hand to count tokens."""
        return character_window()

    @property
    def served_model(self) -> str:
        """The model name requests use, found by load() (the model manager's call) when not given."""
        if self._served_model is None:
            raise EngineNotLoadedError(self.spec.key)
        return self._served_model

    # -- parsing -----------------------------------------------------------------------------------

    def parse_page(self, page: Page, mode: str, options: ParseOptions) -> PageResult:
        started = time.perf_counter()
        body, model_size = self.page_request(page, mode, options)
        prepare_s = time.perf_counter() - started
        completion = self.client.complete(body, options.on_text, options.stop, options.time_limit_s)
        return self.page_result(page, mode, options, completion, model_size, body["max_tokens"], prepare_s)

    def page_request(self, page: Page, mode: str, options: ParseOptions) -> tuple[dict, tuple[int, int]]:
        """The chat-completion body for one page, and the size the model will see the page at."""
        from ..families import ImageLimits

        width, height = page.size
        limits = ImageLimits(options.min_pixels or self.min_pixels, options.max_pixels or self.max_pixels)
        try:
            request = self.family.request(mode, width, height, limits, region=options.region,
                                          prompt=options.prompt)
        except ValueError as error:  # e.g. region_text without a region, free_prompt without text
            raise UnsupportedModeError("mode_needs_input", f"Mode {mode!r} cannot run here: {error}.") from None
        image, model_size = server_image(self.family, page.image, request.model_size)
        text = self.family.server_prompt_prefix + request.prompt if request.prompt else ""
        content: list[dict] = [image_part(image)]
        if text:
            content.append({"type": "text", "text": text})
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": content})
        max_tokens = options.max_new_tokens or self.max_new_tokens or request.max_new_tokens
        body = self._body(messages, max_tokens)
        if request.keep_special_tokens:  # boxes written as special tokens (vLLM / SGLang field)
            body["skip_special_tokens"] = False
        return body, model_size

    def page_result(self, page: Page, mode: str, options: ParseOptions, completion: Completion,
                    model_size: tuple[int, int], max_tokens: int, prepare_s: float = 0.0) -> PageResult:
        """The server's answer read by the family, exactly as a local answer would be."""
        width, height = page.size
        parsed = self.family.parse(completion.text, mode, (width, height), model_size, region=options.region)
        warnings = [*page.warnings, *parsed.warnings]
        if completion.retries:
            warnings.append(f"the server failed {len(completion.retries)} time(s) before answering "
                            f"({completion.retries[-1]}); the page was sent again")
        if completion.stopped_by == STOPPED:
            warnings.append("generation stopped on request: the page holds what was read until then")
        elif completion.stopped_by == TIME_LIMIT:
            warnings.append(f"generation stopped at the {options.time_limit_s:g} s time limit: the page may be incomplete")
        elif completion.finish_reason == "length":
            warnings.append(f"output stopped at the {max_tokens}-token limit: the page may be incomplete")
        return PageResult(
            page=page.number, width=width, height=height, model=self.spec.key, mode=mode,
            elements=parsed.elements, raw_output=completion.text.strip(),  # as the local decode
            timings={"prepare_s": prepare_s, "first_token_s": completion.first_token_s,
                     "generate_s": completion.total_s},
            tokens={"prompt": completion.prompt_tokens, "generated": completion.generated_tokens},
            warnings=warnings,
        )

    # -- prompts and chat --------------------------------------------------------------------------

    def inference(self, page: Page, prompt: str, max_new_tokens: int | None = None) -> str:
        """The model's raw answer to a free prompt about the page."""
        return self.chat(page, [{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens)

    def chat(self, page: Page, messages: list[dict], stream: bool = False,
             max_new_tokens: int | None = None) -> Iterator[str] | str:
        """Answer the last user message; the page goes first in the first user turn."""
        from ..families import ImageLimits
        from .hf_inputs import normalise_messages

        conversation = normalise_messages(messages)
        size = self.family.model_size(*page.size, ImageLimits(self.min_pixels, self.max_pixels))
        image, _ = server_image(self.family, page.image, size)
        first_user = next(i for i, m in enumerate(conversation) if m["role"] == "user")
        conversation[first_user]["content"] = [image_part(image), *conversation[first_user]["content"]]
        body = self._body(conversation, max_new_tokens or self.max_new_tokens or self.default_max_new_tokens)
        if stream:
            return self._stream(body)
        return self.client.complete(body).text

    def _stream(self, body: dict) -> Iterator[str]:
        """Text pieces as they arrive; closing the iterator stops the request."""
        return stream_pieces(lambda on_text, stop: self.client.complete(body, on_text=on_text, stop=stop),
                             "chatvlmllm-chat-stream")

    def _body(self, messages: list[dict], max_tokens: int) -> dict:
        return {
            "model": self.served_model, "messages": messages, "max_tokens": max_tokens,
            "temperature": 0.0, "top_p": 1.0,  # greedy, as local runs
            "stream_options": {"include_usage": True},  # token counts in the last chunk (vLLM, SGLang)
            **self.config.extra_body,
        }


def server_image(family, image: Image.Image, model_size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """The page as it goes to the server, and the size the model will see it at.

    The server's processor resizes every image itself (smart_resize: sides rounded to multiples of
    patch x merge, area within its pixel budget), and the boxes of dots.ocr and Qwen2.5-VL are in
    pixels of THAT resized image. The server never says what size it used. So the page is sent
    already at the family's model_size: a multiple of the factor and inside the budget, it passes
    through the server's resize unchanged, and mapping the boxes back to the page is exact (the
    same size the local engine feeds, see hf_inputs.fit_pixel_budget). Families with their own size
    rules (GOT, Florence-2, DeepSeek-OCR, LightOnOCR) write relative boxes or none: they get the
    page as it is and let the server's processor do what it always does.
    """
    if not family.smart_resizes:
        return image, model_size
    if image.size != tuple(model_size):
        image = image.resize(tuple(model_size), Image.Resampling.BICUBIC)
    return image, tuple(model_size)  # type: ignore[return-value]


def image_part(image: Image.Image) -> dict:
    """An image content part holding the page as a PNG data URL (lossless, as dots.ocr's client)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)  # fast; lossless either way
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


def allowed_session_urls() -> set[str]:
    """Base URLs a UI session may point a model at: the operator's CHATVLMLLM_ALLOWED_SERVER_URLS
    plus every URL the operator configured per model. Nothing else, so a public demo cannot be
    turned into a proxy for requests to arbitrary hosts (server-side request forgery)."""
    urls = _split_urls(os.environ.get(ALLOWED_URLS_ENV, ""))
    urls += [url for name, value in os.environ.items()
             if name.startswith(ENV_PREFIX) and name.endswith("_BASE_URLS") for url in _split_urls(value)]
    return {_normalise_url(url) for url in urls}


def session_base_urls(text: str | None) -> list[str]:
    """Base URLs typed in the UI, each checked against allowed_session_urls(); empty -> []."""
    urls = [_normalise_url(url) for url in _split_urls(text or "")]
    allowed = allowed_session_urls()
    refused = [url for url in urls if url not in allowed]
    if refused:
        raise EngineCapabilityError(
            "server_not_allowed",
            f"Server {', '.join(refused)} is not one the operator allows ({ALLOWED_URLS_ENV}); "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}.",
        )
    return urls


def _split_urls(value: str) -> list[str]:
    return [u for u in (part.strip() for part in value.replace(" ", ",").split(",")) if u]


def _normalise_url(url: str) -> str:
    """'http://host:8000' -> 'http://host:8000/v1' (the OpenAI routes live under /v1)."""
    url = url.strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise EngineCapabilityError("bad_base_url", f"Base URL {url!r} is not an http(s) URL like http://host:8000/v1.")
    return url + "/v1" if parsed.path in ("", "/") else url
