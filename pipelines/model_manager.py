"""Keeps loaded models within a memory budget: one load at a time, least recently used unloads first."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol

BUDGET_ENV = "CHATVLMLLM_MEMORY_BUDGET_GB"


class Loadable(Protocol):
    name: str

    def load(self) -> float: ...

    def unload(self) -> None: ...

    def memory_bytes(self) -> int: ...


@dataclass(frozen=True)
class LoadedModel:
    key: str
    memory_bytes: int
    idle_s: float
    decoding: str = ""  # how it generates (the transformers engine's fast path or generate, and why)


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
        self._loaded: dict[str, tuple[Loadable, float]] = {}  # key -> (engine, last use)

    def ensure_loaded(self, key: str, engine: Loadable) -> float:
        """Load the engine if needed (evicting least recently used ones over budget); seconds spent.

        Sessions using models that are already loaded never wait for this lock.
        """
        with self._state_lock:
            if key in self._loaded:
                self._loaded[key] = (engine, time.monotonic())
                return 0.0
        with self._load_lock:
            with self._state_lock:
                if key in self._loaded:  # another session loaded it meanwhile
                    return 0.0
            seconds = engine.load()
            with self._state_lock:
                self._loaded[key] = (engine, time.monotonic())
            self._evict_over_budget(keep=key)
            return seconds

    def _evict_over_budget(self, keep: str) -> None:
        while True:
            with self._state_lock:
                total = sum(engine.memory_bytes() for engine, _ in self._loaded.values())
                candidates = [(used, key) for key, (_, used) in self._loaded.items() if key != keep]
                if total <= self.budget_bytes or not candidates:
                    return
                victim = min(candidates)[1]
                engine, _ = self._loaded.pop(victim)
            engine.unload()

    def unload(self, key: str) -> bool:
        with self._state_lock:
            entry = self._loaded.pop(key, None)
        if entry is None:
            return False
        entry[0].unload()
        return True

    def loaded(self) -> list[LoadedModel]:
        now = time.monotonic()
        with self._state_lock:
            return sorted(
                (LoadedModel(key, engine.memory_bytes(), now - used, getattr(engine, "decoding_note", ""))
                 for key, (engine, used) in self._loaded.items()),
                key=lambda m: m.idle_s,
            )


MANAGER = ModelManager()
