"""Engines run a model. Each one turns a page (and a mode) into a PageResult."""
from __future__ import annotations

from typing import Protocol

from ..catalogue import ModelSpec
from ..errors import EngineCapabilityError
from .base import ChatEngine, Engine, ParseEngine, ParseOptions

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


def create_engine(spec: ModelSpec, backend: str | None = None, **options) -> ParseEngine:
    """The engine for a catalogue entry. backend: "classic", "transformers" (local weights) or
    "openai" (servers; implied by base_url / base_urls); default: see default_backend. The engine
    is checked against the contract its catalogue entry declares (ParseEngine, ChatEngine if can_chat)."""
    engine = _build_engine(spec, resolve_backend(spec, backend, options), options)
    needed = ChatEngine if spec.can_chat else ParseEngine
    if not isinstance(engine, needed):
        missing = [name for name in contract_members(needed) if not hasattr(engine, name)]
        raise TypeError(f"{type(engine).__name__} does not provide the {needed.__name__} contract: {missing}")
    return engine


def contract_members(protocol: type) -> list[str]:
    """The names a Protocol (and the Protocols it extends) requires."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if getattr(klass, "_is_protocol", False) and klass is not Protocol:
            names |= set(klass.__dict__.get("__annotations__", {}))
            names |= {n for n, v in klass.__dict__.items() if callable(v) and not n.startswith("_")}
    return sorted(names)


def _build_engine(spec: ModelSpec, backend: str, options: dict) -> ParseEngine:
    if backend == "classic":
        from .classic import ClassicEngine

        return ClassicEngine(**options)
    if backend == "openai":
        from .openai_engine import OpenAIEngine, server_config

        config = options.pop("config", None) or server_config(
            spec, **{k: options.pop(k) for k in SERVER_OPTIONS if k in options})
        return OpenAIEngine(spec, config, **options)
    from .hf_loading import require_packages

    require_packages(spec)
    from .transformers_engine import TransformersEngine

    return TransformersEngine(spec, **options)


__all__ = ["BACKENDS", "ChatEngine", "Engine", "ParseEngine", "ParseOptions", "create_engine", "default_backend", "resolve_backend"]
