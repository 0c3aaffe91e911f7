"""Engines run a model. Each one turns a page (and a mode) into a PageResult."""
from __future__ import annotations

from ..catalogue import ModelSpec
from ..errors import EngineCapabilityError
from .base import Engine, ParseOptions

BACKENDS = ("classic", "transformers", "openai")
SERVER_OPTIONS = ("base_url", "base_urls", "served_model", "api_key", "concurrency", "timeout_s",
                  "max_retries", "backoff_s", "extra_body")


def default_backend(spec: ModelSpec) -> str:
    """The catalogue's engine, or "openai" when CHATVLMLLM_OPENAI_<KEY>_BASE_URLS names servers."""
    from .openai_engine import env_base_urls

    if spec.engine != "classic" and env_base_urls(spec.key):
        return "openai"
    return spec.engine


def resolve_backend(spec: ModelSpec, backend: str | None, options: dict) -> str:
    """backend as given; else "openai" when options name a server; else default_backend."""
    if backend is None and any(options.get(k) for k in ("base_url", "base_urls", "config")):
        backend = "openai"
    backend = backend or default_backend(spec)
    if backend not in BACKENDS:
        raise EngineCapabilityError("unknown_backend", f"Unknown backend {backend!r}; backends are {list(BACKENDS)}.")
    if spec.engine == "classic" and backend != "classic":
        raise EngineCapabilityError(
            "backend_not_supported",
            f"{spec.key!r} runs only on its own CPU engine; the {backend!r} backend serves vision-language models.")
    if spec.engine != "classic" and backend == "classic":
        raise EngineCapabilityError(
            "backend_not_supported",
            f"{spec.key!r} is a vision-language model: use the 'transformers' (local) or 'openai' (server) backend.")
    return backend


def create_engine(spec: ModelSpec, backend: str | None = None, **options) -> Engine:
    """The engine for a catalogue entry. backend: "classic", "transformers" (local weights) or
    "openai" (servers; implied by base_url / base_urls); default: see default_backend."""
    backend = resolve_backend(spec, backend, options)
    if backend == "classic":
        from .classic import ClassicEngine

        return ClassicEngine(**options)
    if backend == "openai":
        from .openai_engine import OpenAIEngine, server_config

        config = options.pop("config", None) or server_config(
            spec, **{k: options.pop(k) for k in SERVER_OPTIONS if k in options})
        return OpenAIEngine(spec, config, **options)
    from .transformers_engine import TransformersEngine

    return TransformersEngine(spec, **options)


__all__ = ["BACKENDS", "Engine", "ParseOptions", "create_engine", "default_backend", "resolve_backend"]
