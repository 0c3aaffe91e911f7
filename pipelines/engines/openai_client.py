"""Chat completions against one or several OpenAI-compatible servers (vLLM, SGLang, transformers serve).

What the engine needs from a server, and nothing more: stream one chat completion, honour a stop
event and a time limit while it streams, spread requests over several base URLs, retry what is
worth retrying, and turn every failure into a PipelineError a user can act on.

- Balancing: each request goes to the least busy server (fewest requests in flight; ties in turn).
  A server that failed is avoided for a short cooldown, so its share moves to the others.
- Retries: a refused or dropped connection, 408, 429 and 5xx are retried with exponential backoff
  (bounded), on another server where there is one. A timeout is not retried (the same request would
  wait as long again); nor is any other 4xx (the request itself is wrong).
- Stopping: the caller's stop event or the time limit ends the stream early; the text so far is
  kept. A watcher thread shuts the socket down, so even a server that sends nothing lets go at once.
- Redirects are never followed: a configured server that redirects would otherwise have the
  user's page re-sent to wherever it points. A 3xx is an error naming the server and the target.
"""
from __future__ import annotations

import dataclasses
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import PipelineError, ServerRequestError, ServerResponseError, ServerUnavailableError
from .hf_generation import STOPPED, TIME_LIMIT  # how a generation ended early, as for local runs

COOLDOWN_S = 5.0  # a failed server is avoided this long while others are up
CONNECT_TIMEOUT_S = 10.0
RETRIED_STATUSES = frozenset({408, 429})
_CONTEXT_LENGTH = ("context length", "context_length", "maximum context", "max_model_len",
                   "too long", "too many tokens", "exceeds the model")
_MODEL_MISSING = ("does not exist", "not found", "pinned to", "unknown model", "no model")


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop", "length", ... as the server said; None if it did not
    prompt_tokens: int  # from the server's usage report; 0 when it sent none
    generated_tokens: int
    first_token_s: float  # from sending the request to the first piece of text
    total_s: float
    server: str  # the base URL that answered
    stopped_by: str | None = None  # STOPPED or TIME_LIMIT when ended early
    retries: tuple[str, ...] = ()  # what went wrong before the attempt that answered


@dataclass
class _Server:
    base_url: str
    client: Any  # openai.OpenAI
    in_flight: int = 0
    down_until: float = 0.0  # time.monotonic() until which a failed server is avoided


class _Transient(Exception):
    """A failure worth retrying; carries the error to raise when retries run out."""

    def __init__(self, error: PipelineError):
        super().__init__(error.message)
        self.error = error


class ServerPool:
    """The servers of one engine and the choice of the next one (least busy, failed ones last)."""

    def __init__(self, base_urls: list[str], api_key: str, timeout_s: float):
        import openai

        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._turn = 0
        self.servers = [
            _Server(url, openai.OpenAI(base_url=url, api_key=api_key, max_retries=0,
                                       timeout=_timeout(timeout_s),
                                       # openai's own defaults (limits, ...) except following redirects
                                       http_client=openai.DefaultHttpxClient(follow_redirects=False)))
            for url in base_urls
        ]

    def acquire(self, avoid: _Server | None = None) -> _Server:
        with self._lock:
            now = time.monotonic()
            up = [s for s in self.servers if s.down_until <= now]
            # With every server down, try the one whose cooldown ends first (it may be back).
            candidates = up or [min(self.servers, key=lambda s: s.down_until)]
            if avoid is not None and len(candidates) > 1:
                candidates = [s for s in candidates if s is not avoid]
            self._turn += 1  # among equally busy servers, each one's turn comes round
            count = len(self.servers)
            server = min(candidates, key=lambda s: (s.in_flight, (self.servers.index(s) - self._turn) % count))
            server.in_flight += 1
            return server

    def release(self, server: _Server, failed: bool) -> None:
        with self._lock:
            server.in_flight -= 1
            server.down_until = time.monotonic() + COOLDOWN_S if failed else 0.0

    def list_models(self) -> tuple[str | None, list[str]]:
        """(base URL that answered, the model names it serves); (None, []) if none answered."""
        return served_models(self.servers)


class ChatClient:
    """Streams chat completions from a ServerPool with retries, stop and time limit."""

    def __init__(self, pool: ServerPool, max_retries: int = 3, backoff_s: float = 0.5,
                 backoff_max_s: float = 8.0):
        self.pool = pool
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s

    def complete(self, body: dict, on_text: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None, time_limit_s: float | None = None) -> Completion:
        """One chat completion (body as for POST /v1/chat/completions, streamed). Raises ServerError."""
        started = time.perf_counter()
        deadline = started + time_limit_s if time_limit_s else None
        failures: list[str] = []
        server = None
        while True:
            server = self.pool.acquire(avoid=server)
            try:
                completion = self._stream(server, body, on_text, stop, deadline, started)
            except _Transient as transient:
                self.pool.release(server, failed=True)
                failures.append(transient.error.message)
                delay = min(self.backoff_max_s, self.backoff_s * 2 ** (len(failures) - 1))
                out_of_time = deadline is not None and time.perf_counter() + delay > deadline
                if len(failures) > self.max_retries or out_of_time:
                    raise _with_attempts(transient.error, failures) from None
                if _wait(delay, stop):
                    return _empty(server.base_url, STOPPED, started, failures)
                continue
            except ServerUnavailableError:  # a timeout: the server is there but too slow
                self.pool.release(server, failed=True)
                raise
            except BaseException:
                self.pool.release(server, failed=False)
                raise
            self.pool.release(server, failed=False)
            return dataclasses.replace(completion, retries=tuple(failures))

    def _stream(self, server: _Server, body: dict, on_text, stop, deadline, started) -> Completion:
        import openai

        if stop is not None and stop.is_set():
            return _empty(server.base_url, STOPPED, started)
        timeout = self.pool.timeout_s
        if deadline is not None:  # the time limit also bounds waiting for the first byte
            timeout = max(0.001, min(timeout, deadline - time.perf_counter()))
        watcher = _Watcher(stop, deadline)
        pieces: list[str] = []
        finish_reason = None
        usage = None
        first_token_at = None
        chunks = 0
        try:
            stream = server.client.chat.completions.create(**body, stream=True, timeout=_timeout(timeout))
            watcher.watch(stream.response)
            for chunk in stream:
                chunks += 1
                usage = getattr(chunk, "usage", None) or usage
                choices = getattr(chunk, "choices", None)
                if choices is None and usage is None:
                    raise ServerResponseError(
                        "bad_server_response",
                        f"The server at {server.base_url} sent a stream event that is not a chat "
                        f"completion chunk: {str(chunk)[:200]}")
                for choice in choices or ():
                    text = getattr(choice.delta, "content", None) if choice.delta is not None else None
                    if text:
                        first_token_at = first_token_at or time.perf_counter()
                        pieces.append(text)
                        if on_text:
                            on_text(text)
                    finish_reason = choice.finish_reason or finish_reason
                if watcher.check():
                    break
        except _timeouts():
            if watcher.reason or (deadline is not None and time.perf_counter() >= deadline):
                watcher.reason = watcher.reason or TIME_LIMIT
            else:
                raise ServerUnavailableError(
                    "server_timeout",
                    f"The model server at {server.base_url} did not answer within {self.pool.timeout_s:g} s "
                    "(timeout_s). It may be overloaded or stuck: check its log, lower the concurrency, "
                    "or raise the timeout.") from None
        except _connection_errors() as error:
            if not watcher.reason:  # a connection we shut down ourselves is not a failure
                raise _Transient(_unreachable(server.base_url, error, bool(pieces))) from None
        except openai.APIStatusError as error:
            raise _status_error(server, body, error) from None
        except openai.APIError as error:  # an error event inside the stream (the server gave up)
            raise _Transient(ServerUnavailableError(
                "server_error", f"The model server at {server.base_url} failed while generating: "
                f"{_describe(error)}")) from None
        except PipelineError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as error:  # e.g. data that is not JSON
            raise ServerResponseError(
                "bad_server_response",
                f"The server at {server.base_url} sent a response that is not a chat completion stream "
                f"({type(error).__name__}: {str(error)[:200]}). Is the base URL an OpenAI-compatible "
                "/v1 endpoint?") from None
        finally:
            watcher.close()
        if chunks == 0 and not watcher.reason:
            raise ServerResponseError(
                "bad_server_response",
                f"The server at {server.base_url} answered with no chat completion chunk. Is the base "
                "URL an OpenAI-compatible /v1 endpoint with streaming?")
        now = time.perf_counter()
        return Completion(
            text="".join(pieces), finish_reason=finish_reason,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            generated_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            first_token_s=(first_token_at or now) - started, total_s=now - started,
            server=server.base_url, stopped_by=watcher.reason,
        )


class _Watcher:
    """Ends a stream when the stop event is set or the deadline passes, even while the server is
    silent: closing a response does not wake a thread blocked reading its socket, shutting the
    socket down does."""

    def __init__(self, stop: threading.Event | None, deadline: float | None):
        self.stop, self.deadline = stop, deadline
        self.reason: str | None = None
        self._done = threading.Event()
        self._response = None
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        if self.reason is None:
            if self.stop is not None and self.stop.is_set():
                self.reason = STOPPED
            elif self.deadline is not None and time.perf_counter() >= self.deadline:
                self.reason = TIME_LIMIT
        return self.reason

    def watch(self, response) -> None:
        self._response = response
        if self.stop is not None or self.deadline is not None:
            self._thread = threading.Thread(target=self._run, name="chatvlmllm-stream-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.05):
            if self.check():
                _shut_down(self._response)
                return

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._response is not None:
            self._response.close()


def _raw_transport_errors(kind: str) -> tuple[type[BaseException], ...]:
    """httpx's own exceptions, which some openai releases let out of a stream unwrapped."""
    import importlib

    found = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(getattr(importlib.import_module(name), kind))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _timeouts() -> tuple[type[BaseException], ...]:
    import openai

    return (openai.APITimeoutError, *_raw_transport_errors("TimeoutException"))


def _connection_errors() -> tuple[type[BaseException], ...]:
    import openai

    return (openai.APIConnectionError, *_raw_transport_errors("TransportError"))


def _shut_down(response) -> None:
    stream = getattr(response, "extensions", {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the other side
            pass


def _wait(seconds: float, stop: threading.Event | None) -> bool:
    """Sleep, or less if the stop event is set; True when stopped."""
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)


def _timeout(seconds: float):
    import openai

    return openai.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_S))


def _empty(base_url: str, stopped_by: str, started: float, failures=()) -> Completion:
    elapsed = time.perf_counter() - started
    return Completion("", None, 0, 0, elapsed, elapsed, base_url, stopped_by, tuple(failures))


def _with_attempts(error: PipelineError, failures: list[str]) -> PipelineError:
    """The last failure, saying how many attempts were made and what went wrong first if it differs."""
    if len(failures) > 1:
        first = f"; first: {failures[0]}" if failures[0] != error.message else ""
        error.message = f"{error.message} (gave up after {len(failures)} attempts{first})"
        error.args = (error.message,)
    return error


def _unreachable(base_url: str, error: Exception, mid_answer: bool) -> ServerUnavailableError:
    cause = error.__cause__ or error.__context__ or error
    if mid_answer:
        return ServerUnavailableError(
            "server_disconnected",
            f"The model server at {base_url} dropped the connection in the middle of an answer "
            f"({type(cause).__name__}): it may have stopped or crashed.")
    return ServerUnavailableError(
        "server_unreachable",
        f"Cannot reach the model server at {base_url} ({type(cause).__name__}: {str(cause)[:160]}). "
        "Is it running, and is the base URL right (e.g. http://host:8000/v1)?")


def _status_error(server: _Server, body: dict, error) -> Exception:
    status = error.status_code
    detail = _describe(error)
    where = f"The model server at {server.base_url}"
    if 300 <= status < 400:
        location = error.response.headers.get("location") or "nowhere (no Location header)"
        return ServerResponseError(
            "server_redirect",
            f"{where} redirected the request (HTTP {status}) to {location[:300]}; redirects are not "
            "followed, so the page was not sent there. Set the base URL to the server that answers.")
    if status >= 500 or status in RETRIED_STATUSES:
        return _Transient(ServerUnavailableError(
            "server_error", f"{where} answered HTTP {status}: {detail}"))
    lowered = detail.lower()
    if any(marker in lowered for marker in _CONTEXT_LENGTH):
        return ServerRequestError(
            "context_length_exceeded",
            f"{where} refused the page: it needs more tokens than the model's context allows ({detail}). "
            "Lower max_pixels (fewer image tokens) or max_new_tokens, or start the server with a larger "
            "context (vLLM --max-model-len, SGLang --context-length).")
    if status == 404 or any(marker in lowered for marker in _MODEL_MISSING):
        _, served = served_models([server])
        listing = f" It serves: {', '.join(served)}." if served else ""
        return ServerRequestError(
            "model_not_found",
            f"{where} does not serve the model {body.get('model')!r} ({detail}).{listing} Set served_model "
            "(--served-model, or CHATVLMLLM_OPENAI_<KEY>_MODEL) to the name the server was started with.")
    if status in (401, 403):
        return ServerRequestError(
            "server_auth",
            f"{where} refused the API key (HTTP {status}: {detail}). Set api_key (--api-key, or "
            "CHATVLMLLM_OPENAI_<KEY>_API_KEY) to the key the server expects.")
    return ServerRequestError("server_rejected", f"{where} refused the request (HTTP {status}): {detail}")


def served_models(servers: list[_Server]) -> tuple[str | None, list[str]]:
    """(base URL of the first server that answered GET /models, the model names it serves)."""
    for server in servers:
        try:
            models = server.client.with_options(timeout=_timeout(CONNECT_TIMEOUT_S)).models.list()
            return server.base_url, [m.id for m in models.data]
        except Exception:  # noqa: BLE001 - any server that answers will do; the caller reports none
            continue
    return None, []


def _describe(error) -> str:
    """The server's own words from an error body (OpenAI, vLLM, FastAPI and plain-text shapes)."""
    body = getattr(error, "body", None)
    for _ in range(3):
        if isinstance(body, dict):
            body = next((body[k] for k in ("message", "detail", "error") if body.get(k)), body)
        else:
            break
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    response = getattr(error, "response", None)
    try:
        text = response.text if response is not None else ""
    except Exception:  # noqa: BLE001 - a streamed body that cannot be read: fall back to the message
        text = ""
    return (text.strip() or getattr(error, "message", "") or type(error).__name__)[:500]
