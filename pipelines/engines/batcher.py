"""Continuous batching: one worker thread per loaded model decodes every request in flight together.

Callers (the pages of a PDF, Compare columns, other users) submit a prompt and wait. The worker
prefills each new prompt alone, gives it a free row of the running batch, and decodes all rows one
step at a time; every `sync_every` steps it hands out the new tokens, ends the rows that finished,
stopped or ran out of time, and lets waiting prompts take the free rows. A row's tokens do not
depend on its neighbours (see fast_decode), so a page reads the same in a batch as alone.

All GPU work happens in the worker thread: CUDA graphs are recorded and replayed there.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import PipelineError
from .fast_decode import ROW_BUCKETS, Decoder, DecodeState, Prefill, bucket_columns, bucket_rows

log = logging.getLogger(__name__)

STOPPED = "stopped"  # the caller's stop event
TIME_LIMIT = "time_limit"
KEPT_STATES = 4  # decode states (KV caches) kept for reuse: their addresses are baked into graphs


@dataclass
class DecodeRequest:
    tensors: object  # the prompt, a BatchFeature already on the model's device
    max_new_tokens: int
    on_tokens: Callable[[list[int]], None] | None = None
    stop: threading.Event | None = None
    time_limit_s: float | None = None  # from the start of its prefill: waiting for a row is not counted
    deadline: float | None = None  # time.perf_counter() value, set when its prefill starts
    submitted: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    first_token_at: float | None = None
    finished_at: float | None = None
    stopped_by: str | None = None
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    news: threading.Event = field(default_factory=threading.Event)  # tokens came (or it finished)
    delivered: int = 0

    def emit(self, tokens: list[int]) -> None:
        """Worker side: new tokens. The caller's thread hands them to on_tokens (text decoding is
        the caller's work: the worker never waits on a listener)."""
        self.tokens.extend(tokens)
        self.news.set()

    def deliver(self) -> None:
        """Caller side: pass the tokens not yet delivered to on_tokens."""
        self.news.clear()
        fresh = self.tokens[self.delivered:]
        self.delivered += len(fresh)
        if self.on_tokens and fresh:
            self.on_tokens(fresh)

    def finish(self, error: BaseException | None = None, stopped_by: str | None = None) -> None:
        self.error, self.stopped_by = error, stopped_by
        self.finished_at = time.perf_counter()
        self.finished.set()
        self.news.set()

    def interrupted(self, now: float) -> str | None:
        if self.stop is not None and self.stop.is_set():
            return STOPPED
        if self.deadline is not None and now > self.deadline:
            return TIME_LIMIT
        return None


@dataclass
class _Job:
    run: Callable[[], object]
    result: object = None
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class Batcher:
    def __init__(self, decoder: Decoder, max_rows: int, name: str = "chatvlmllm-decode"):
        self.decoder = decoder
        # Rows come in buckets (fast_decode.ROW_BUCKETS): the largest one within the limit.
        self.max_rows = max(b for b in ROW_BUCKETS if b <= max(1, max_rows))
        self.name = name
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._states: collections.OrderedDict[tuple[int, int], DecodeState] = collections.OrderedDict()
        # batches, prefills, steps, max_rows_busy, prefill_s: for benchmarks and tests
        self.stats: collections.Counter = collections.Counter()

    # -- callers' side -------------------------------------------------------------------------------

    def submit(self, request: DecodeRequest) -> DecodeRequest:
        """Queue a prompt and wait for its answer, handing its tokens to on_tokens as they come (on
        this thread); raises what failed it (out of memory, say)."""
        self._put(request)
        while not request.finished.is_set():
            request.news.wait()
            request.deliver()
        request.deliver()
        if request.error is not None:
            raise request.error
        return request

    def call(self, run: Callable[[], object]):
        """Run a function in the worker thread, between batches (warm-up, measurements)."""
        job = _Job(run)
        self._put(job)
        job.finished.wait()
        if job.error is not None:
            raise job.error
        return job.result

    @contextlib.contextmanager
    def held(self):
        """The worker waits, between batches, until the block ends: requests submitted meanwhile
        start as one batch (benchmarks and tests measure batches without racing the worker)."""
        started, release = threading.Event(), threading.Event()
        job = _Job(lambda: (started.set(), release.wait()))
        self._put(job)
        started.wait()
        try:
            yield
        finally:
            release.set()
            job.finished.wait()

    def warm_up(self, rows: int, columns: int, prompt_ids) -> float:
        """Compile and record the decode step for one (rows, columns) shape now, not in a user's page."""

        def run() -> float:
            started = time.perf_counter()
            prefill = self.decoder.prefill({"input_ids": prompt_ids})
            self._keep((rows, columns), self.decoder.prepare_shape(rows, columns, like=prefill))
            return time.perf_counter() - started

        return self.call(run)

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for s in list(self._states.values()) for t in s.tensors())

    def close(self) -> None:
        """Finish what is queued, then stop the worker and free the caches."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._states.clear()

    def _put(self, item) -> None:
        with self._wake:
            if self._closed:
                raise PipelineError("model_unloaded", "The model was unloaded while this request waited; "
                                    "run it again to load it anew.")
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._wake.notify_all()

    # -- the worker ----------------------------------------------------------------------------------

    def _work(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                self._compile_pending()
                with self._wake:
                    while not self._queue and not self._closed:
                        self._wake.wait()
                    if not self._queue:
                        return
                    head = self._queue[0]
                    if isinstance(head, _Job):
                        self._queue.popleft()
                if isinstance(head, _Job):
                    try:
                        head.result = head.run()
                    except BaseException as error:  # noqa: BLE001 - handed to the caller
                        head.error = error
                    head.finished.set()
                    continue
                try:
                    self._decode_batch()
                except BaseException:  # noqa: BLE001 - _decode_batch fails its requests; the worker goes on
                    log.exception("decoding batch failed")

    def _compile_pending(self) -> None:
        """While nobody waits, compile the decode shapes that recent batches ran uncompiled."""
        while self.decoder.pending_shapes and not self._closed:
            with self._wake:
                if self._queue:
                    return
            shape = min(self.decoder.pending_shapes)
            try:
                self._keep(shape, self.decoder.prepare_shape(*shape))
            except Exception:  # noqa: BLE001 - e.g. out of memory: that shape stays uncompiled
                log.exception("compiling decode shape %s failed", shape)
                self.decoder.pending_shapes.discard(shape)

    def _take(self, limit: int) -> list[DecodeRequest]:
        taken = []
        with self._wake:
            while self._queue and len(taken) < limit and isinstance(self._queue[0], DecodeRequest):
                taken.append(self._queue.popleft())
        return taken

    def _prefill(self, request: DecodeRequest) -> Prefill | None:
        started = time.perf_counter()
        if request.stop is not None and request.stop.is_set():  # stopped while it waited
            request.finish(stopped_by=STOPPED)
            return None
        if request.time_limit_s:
            request.deadline = started + request.time_limit_s
        try:
            prefill = self.decoder.prefill(request.tensors)
        except BaseException as error:  # noqa: BLE001 - this request fails, the batch goes on
            request.finish(error)
            return None
        request.prompt_tokens = prefill.keys[0].shape[2]
        request.first_token_at = time.perf_counter()
        request.tensors = None  # the pixels are no longer needed
        self.stats["prefills"] += 1
        self.stats["prefill_s"] += request.first_token_at - started
        request.emit([prefill.first_token])
        return prefill

    def _decode_batch(self) -> None:
        import torch

        taken: list[DecodeRequest] = []  # every request this batch took: each one ends finished
        try:
            for request in self._take(self.max_rows):
                taken.append(request)
            prefilled = [(r, p) for r in taken if (p := self._prefill(r)) is not None]
            if not prefilled:
                return
            self._run_batch(prefilled, taken)
        except BaseException as error:  # noqa: BLE001 - e.g. out of memory: fail this batch, keep serving
            for request in taken:
                if not request.finished.is_set():
                    request.finish(error)
            self._states.clear()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if not isinstance(error, Exception):
                raise

    def _run_batch(self, prefilled: list[tuple[DecodeRequest, Prefill]], taken: list[DecodeRequest]) -> None:
        import torch

        decoder = self.decoder
        margin = decoder.sync_every + 1
        state = self._state(bucket_rows(len(prefilled), self.max_rows),
                            bucket_columns(max(r.prompt_tokens for r, _ in prefilled) + margin), prefilled[0][1])
        rows: list[DecodeRequest | None] = [None] * state.cache.rows
        lengths = [0] * state.cache.rows  # host copy of each row's cache length

        def start(row: int, request: DecodeRequest, prefill: Prefill) -> None:
            nonlocal state
            rows[row], lengths[row] = request, request.prompt_tokens
            if request.prompt_tokens + margin > state.cache.columns:
                state = self._resize(state, state.cache.rows, request.prompt_tokens + margin)
            decoder.start_row(state, row, prefill, request.max_new_tokens)
            self._check_end(request, time.perf_counter())

        for row, (request, prefill) in enumerate(prefilled):
            start(row, request, prefill)
        self.stats["batches"] += 1
        while True:
            self._drop_stopped_waiting()
            for row, request in enumerate(rows):
                if request is not None and request.finished.is_set():
                    state.done[row] = True
                    rows[row] = None
            waiting = self.waiting()
            free = [row for row, request in enumerate(rows) if request is None]
            wanted = bucket_rows(len(rows) - len(free) + waiting, self.max_rows)
            if waiting > len(free) and wanted > len(rows):  # more pages came: more rows
                state = self._resize(state, wanted, state.cache.columns)
                rows.extend([None] * (wanted - len(rows)))
                lengths.extend([0] * (wanted - len(lengths)))
                free = [row for row, request in enumerate(rows) if request is None]
            if free and not self._closed:  # waiting prompts take the free rows
                for row, request in zip(free, self._take(len(free))):
                    taken.append(request)
                    if (prefill := self._prefill(request)) is not None:
                        start(row, request, prefill)
            busy = [r for r in rows if r is not None and not r.finished.is_set()]
            if not busy:
                return
            self.stats["max_rows_busy"] = max(self.stats["max_rows_busy"], len(busy))
            needed = max(lengths[row] for row, r in enumerate(rows) if r is not None) + margin
            if needed > state.cache.columns:
                state = self._resize(state, state.cache.rows, needed)
            chunk = []
            for _ in range(decoder.sync_every):
                decoder.step(state)
                chunk.append(state.tokens.clone())
            self.stats["steps"] += len(chunk)
            host = torch.stack(chunk).cpu().tolist()  # the one host sync per chunk
            now = time.perf_counter()
            for row, request in enumerate(rows):
                if request is None or request.finished.is_set():
                    continue
                new = []
                for step in host:
                    new.append(step[row])
                    if self._ends(request, len(new), step[row]):
                        break
                lengths[row] += len(new)
                request.emit(new)
                self._check_end(request, now)

    def _drop_stopped_waiting(self) -> None:
        """Pages stopped while they wait for a row end now, not when a row frees up."""
        with self._wake:
            stopped = [item for item in self._queue if isinstance(item, DecodeRequest)
                       and item.stop is not None and item.stop.is_set()]
            for request in stopped:
                self._queue.remove(request)
        for request in stopped:
            request.finish(stopped_by=STOPPED)

    def _ends(self, request: DecodeRequest, new_count: int, token: int) -> bool:
        return token in self.decoder.eos_ids or len(request.tokens) + new_count >= request.max_new_tokens

    def _check_end(self, request: DecodeRequest, now: float) -> None:
        if request.tokens and self._ends(request, 0, request.tokens[-1]):
            request.finish()
        elif (reason := request.interrupted(now)) is not None:
            request.finish(stopped_by=reason)

    def _state(self, rows: int, columns: int, like: Prefill) -> DecodeState:
        """A decode state of this shape, reused when one exists (its graph stays valid)."""
        key = (rows, columns)
        state = self._states.pop(key, None) or self.decoder.new_state(rows, columns, like)
        self._keep(key, state)
        self.decoder.reset(state)
        return state

    def waiting(self) -> int:
        """Requests queued for the worker."""
        with self._wake:
            return sum(1 for item in self._queue if isinstance(item, DecodeRequest))

    def _resize(self, state: DecodeState, rows: int, columns: int) -> DecodeState:
        """The batch in a state of more rows or columns: a kept state of that shape when there is
        one (its compiled graph stays valid), else a new one."""
        key = (rows, bucket_columns(columns))
        bigger = self.decoder.resized(state, *key, into=self._states.pop(key, None))
        self._keep(key, bigger)
        return bigger

    def _keep(self, key, state) -> None:
        self._states[key] = state
        while len(self._states) > KEPT_STATES:
            self._states.popitem(last=False)
