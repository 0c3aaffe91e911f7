"""Engines run a model. Each one turns a page (and a mode) into a PageResult."""
from __future__ import annotations

from ..catalogue import ModelSpec
from .base import Engine, ParseOptions


def create_engine(spec: ModelSpec, **options) -> Engine:
    if spec.engine == "classic":
        from .classic import ClassicEngine

        return ClassicEngine(**options)
    if spec.engine == "transformers":
        from .transformers_engine import TransformersEngine

        return TransformersEngine(spec, **options)
    raise ValueError(f"no engine named {spec.engine!r}")


__all__ = ["Engine", "ParseOptions", "create_engine"]
