"""Keeps loaded models within a memory budget: one load at a time, least recently used unloads
first, before the next load (not after it), and never a model that a request is using.

Every load goes through here (Pipeline uses `MANAGER.using(...)` around each request): engines
do not load themselves, so what the Models tab shows and what the budget counts is what is loaded.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol

from .errors import PipelineError

BUDGET_ENV = "CHATVLMLLM_MEMORY_BUDGET_GB"


class Managed(Protocol):
    """What the manager needs of an engine."""

    name: str
    decoding_note: str

    def load(self) -> float:
        """Load the weights (called only by the manager); seconds it took."""

    def unload(self) -> None:
        """Free the weights; waits for a running request of this engine to end."""

    def memory_bytes(self) -> int:
        """What it holds now (0 when not loaded)."""

    def expected_bytes(self) -> int:
        """What it will hold once loaded (an estimate from the weights on disk; 0 if unknown)."""


@dataclass(frozen=True)
class LoadedModel:
    key: str
    memory_bytes: int
    idle_s: float
    decoding: str = ""  # how it generates (the transformers engine's fast path or generate, and why)
    in_use: int = 0  # requests using it now


class ModelBusyError(PipelineError):
    status = 409


def default_budget_bytes() -> int:
    """CHATVLMLLM_MEMORY_BUDGET_GB if set, else half of this machine's RAM."""
    if os.environ.get(BUDGET_ENV):
        return int(float(os.environ[BUDGET_ENV]) * 1024**3)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


class ModelManager:
    def __init__(self, budget_bytes: int | None = None):
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget_bytes()
        self._load_lock = threading.Lock()  # one model loads at a time
        self._state_lock = threading.Lock()
        self._loaded: dict[str, tuple[Managed, float]] = {}  # key -> (engine, last use)
        self._in_use: Counter[str] = Counter()

    @contextmanager
    def using(self, key: str, engine: Managed) -> Iterator[float]:
        """The engine loaded and kept loaded for the block; yields the seconds loading took."""
        seconds = self._acquire(key, engine)
        try:
            yield seconds
        finally:
            with self._state_lock:
                self._in_use[key] -= 1
                if self._in_use[key] <= 0:
                    del self._in_use[key]
                if key in self._loaded:
                    self._loaded[key] = (engine, time.monotonic())

    def ensure_loaded(self, key: str, engine: Managed) -> float:
        """Load the engine if needed (for callers that only need it loaded now); seconds spent."""
        with self.using(key, engine) as seconds:
            return seconds

    def _acquire(self, key: str, engine: Managed) -> float:
        """Sessions using models that are already loaded never wait for the load lock."""
        with self._state_lock:
            if key in self._loaded:
                self._loaded[key] = (engine, time.monotonic())
                self._in_use[key] += 1
                return 0.0
        with self._load_lock:
            with self._state_lock:
                if key in self._loaded:  # another session loaded it meanwhile
                    self._in_use[key] += 1
                    return 0.0
                self._in_use[key] += 1  # pinned while loading: nobody evicts what is arriving
            try:
                self._evict_for(engine.expected_bytes(), keep=key)
                seconds = engine.load()
            except BaseException:
                with self._state_lock:
                    self._in_use[key] -= 1
                    if self._in_use[key] <= 0:
                        del self._in_use[key]
                raise
            with self._state_lock:
                self._loaded[key] = (engine, time.monotonic())
            self._evict_for(0, keep=key)  # the estimate may have been low
            return seconds

    def _evict_for(self, incoming: int, keep: str) -> None:
        """Unload idle models, least recently used first, until `incoming` more bytes fit."""
        while True:
            with self._state_lock:
                total = sum(engine.memory_bytes() for engine, _ in self._loaded.values())
                candidates = [(used, key) for key, (_, used) in self._loaded.items()
                              if key != keep and not self._in_use.get(key)]
                if total + incoming <= self.budget_bytes or not candidates:
                    return
                victim = min(candidates)[1]
                engine, _ = self._loaded.pop(victim)
            engine.unload()

    def unload(self, key: str) -> bool:
        """Unload an idle model; False if it was not loaded, ModelBusyError if a request uses it."""
        with self._state_lock:
            if self._in_use.get(key):
                raise ModelBusyError("model_busy", f"{key} is in use by {self._in_use[key]} request(s); "
                                                   "try again when they are done.")
            entry = self._loaded.pop(key, None)
        if entry is None:
            return False
        entry[0].unload()
        return True

    def loaded(self) -> list[LoadedModel]:
        now = time.monotonic()
        with self._state_lock:
            return sorted(
                (LoadedModel(key, engine.memory_bytes(), now - used, engine.decoding_note,
                             self._in_use.get(key, 0))
                 for key, (engine, used) in self._loaded.items()),
                key=lambda m: m.idle_s,
            )


MANAGER = ModelManager()
