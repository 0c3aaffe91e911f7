"""One bound on the model work this process does at once, shared by the REST routes and the
Gradio events: a public demo must push back (503 with Retry-After) rather than pile up requests
until memory or time runs out, whichever door they come in by."""
from __future__ import annotations

import functools
import inspect
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from .errors import PipelineError

RETRY_AFTER_S = 5


class BusyError(PipelineError):
    """Every work slot is taken and the waiting line is full."""

    status = 503
    retry_after_s = RETRY_AFTER_S


class WorkLimiter:
    """`slots` requests run at once; up to `max_waiting` more wait for a slot (at most `wait_s`);
    anyone beyond that is refused at once with BusyError."""

    def __init__(self, slots: int, max_waiting: int, wait_s: float = 120.0):
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self.wait_s = wait_s
        self._free = threading.Semaphore(self.slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self.running = 0

    @contextmanager
    def slot(self, busy: Callable[[BusyError], Exception] = lambda error: error) -> Iterator[None]:
        """A running slot for the block; refused (busy(BusyError)) when the line is full too."""
        try:
            self._take()
        except BusyError as error:
            raise busy(error) from None
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._free.release()

    def _take(self) -> None:
        with self._lock:
            acquired = self._free.acquire(blocking=False)
            if not acquired:
                if self._waiting >= self.max_waiting:
                    raise self._busy()
                self._waiting += 1
        if not acquired:
            try:
                acquired = self._free.acquire(timeout=self.wait_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not acquired:
                raise self._busy()
        with self._lock:
            self.running += 1

    def _busy(self) -> BusyError:
        return BusyError("busy", f"The server is busy ({self.slots} requests running, {self.max_waiting} waiting); "
                                 f"try again in {RETRY_AFTER_S} s.")

    def limited(self, fn: Callable, busy: Callable[[BusyError], Exception] = lambda error: error) -> Callable:
        """fn (a function or a generator function, e.g. a streaming Gradio event) run in a slot;
        busy turns the refusal into the exception the caller's framework shows."""
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                with self.slot(busy):
                    yield from fn(*args, **kwargs)
            return generator

        @functools.wraps(fn)
        def function(*args, **kwargs):
            with self.slot(busy):
                return fn(*args, **kwargs)
        return function


# Concurrent model requests (CHATVLMLLM_MODEL_CONCURRENCY, default 4: a local VLM batches them)
# and how many more may wait (CHATVLMLLM_MAX_WAITING, default 16).
WORK = WorkLimiter(int(os.environ.get("CHATVLMLLM_MODEL_CONCURRENCY", "4")),
                   int(os.environ.get("CHATVLMLLM_MAX_WAITING", "16")))
