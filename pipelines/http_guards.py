"""ASGI middleware for a public deployment: security headers on every answer, a time limit on
reading request bodies, a size limit on them, and a disk budget checked before uploads."""
from __future__ import annotations

import asyncio
import json
import os
from typing import Awaitable, Callable

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]

# Images only from this server or data:/blob: URLs (the app's own picture crops), so document text
# or model output that slips an <img src=http://…> past everything else still fetches nothing.
# Gradio's page needs inline scripts and styles. In a Hugging Face Space the page is framed by
# huggingface.co; elsewhere nobody may frame it (CHATVLMLLM_FRAME_ANCESTORS overrides both).
SPACE_FRAME_ANCESTORS = "https://huggingface.co https://*.hf.space"


def frame_ancestors() -> str:
    configured = os.environ.get("CHATVLMLLM_FRAME_ANCESTORS", "").strip()
    if configured:
        return configured
    return SPACE_FRAME_ANCESTORS if os.environ.get("SPACE_ID") else "'none'"


def security_headers() -> list[tuple[bytes, bytes]]:
    ancestors = frame_ancestors()
    policy = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
              "media-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
              f"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors {ancestors}")
    headers = [(b"content-security-policy", policy.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer")]
    if ancestors == "'none'":
        headers.append((b"x-frame-options", b"DENY"))
    return headers


# FastAPI's API docs pages load Swagger UI / ReDoc from this CDN; only those pages may.
DOCS_PATHS = ("/docs", "/redoc")
DOCS_SOURCES = "https://cdn.jsdelivr.net"


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = security_headers()
        self.docs_headers = [
            (name, value.replace(b"script-src 'self'", f"script-src 'self' {DOCS_SOURCES}".encode())
             .replace(b"style-src 'self'", f"style-src 'self' {DOCS_SOURCES}".encode())
             .replace(b"img-src 'self'", b"img-src 'self' https://fastapi.tiangolo.com"))
            for name, value in self.headers]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = self.docs_headers if scope.get("path") in DOCS_PATHS else self.headers

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(n, v) for n, v in headers if n not in names]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyRefused(Exception):
    """Raised from a guarded receive(): the request gets this answer instead of the app's."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _run_guarding_body(app: ASGIApp, scope, send, guarded_receive) -> None:
    """Run the app on guarded_receive. When it refuses the body (_BodyRefused), whatever the app
    makes of the cut body (a 400 "cannot parse", say) is dropped and the refusal is the answer."""
    refused: _BodyRefused | None = None
    response_started = False

    async def receive():
        nonlocal refused
        try:
            return await guarded_receive()
        except _BodyRefused as refusal:
            refused = refusal
            raise

    async def tracking_send(message):
        nonlocal response_started
        if refused is not None and not response_started:
            return
        if message["type"] == "http.response.start":
            response_started = True
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except _BodyRefused:
        pass
    if refused is not None and not response_started:
        await _send_error(send, refused.status, refused.code, refused.message)


class BodyReadTimeout:
    """A client that sends less body than it announced (or trickles it) would hold a connection
    and a worker forever: each body chunk must arrive within `timeout_s`, else 408. Only reads
    while the body is incomplete are timed (later receive() calls wait for a disconnect)."""

    def __init__(self, app: ASGIApp, timeout_s: float = 30.0):
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                raise _BodyRefused(408, "body_timeout",
                                   f"The request body did not arrive within {self.timeout_s:.0f} s.") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await _run_guarding_body(self.app, scope, send, timed_receive)


class BodySizeLimit:
    """No request body above max_bytes, announced or not: a bigger Content-Length gets 413 before
    a byte is read, and a chunked body is cut off (413) once it passes the limit. Otherwise the
    multipart parser would spool a body of any size to disk before a route could refuse it."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"The request body is over the limit of {self.max_bytes / 2**20:.0f} MiB."
        announced = _content_length(scope)
        if announced is not None and announced > self.max_bytes:
            return await _send_error(send, 413, "too_large", message)
        received = 0

        async def counting_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyRefused(413, "too_large", message)
            return event

        await _run_guarding_body(self.app, scope, send, counting_receive)


class UploadDiskBudget:
    """Before Gradio takes an upload, expired files are swept and the upload must fit the disk
    budget (see ui/storage.py): a full budget answers 507 rather than deleting what other users
    uploaded a moment ago. A body without Content-Length counts as `assumed_bytes`."""

    def __init__(self, app: ASGIApp, make_room: Callable[[int], bool], assumed_bytes: int,
                 paths: tuple[str, ...] = ("/gradio_api/upload",)):
        self.app = app
        self.make_room = make_room
        self.assumed_bytes = assumed_bytes
        self.paths = paths

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").endswith(self.paths):
            announced = _content_length(scope)
            size = self.assumed_bytes if announced is None else announced
            if not await asyncio.to_thread(self.make_room, size):
                return await _send_error(send, 507, "disk_full",
                                         "The server has no room for more uploads right now; try again later.")
        await self.app(scope, receive, send)


def _content_length(scope) -> int | None:
    value = dict(scope.get("headers", [])).get(b"content-length")
    return int(value) if value is not None and value.isdigit() else None


async def _send_error(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def header_timeout_protocol(timeout_s: float = 10.0):
    """uvicorn's h11 protocol with a limit on how long a request's line and headers may take to
    arrive. uvicorn times idle keep-alive connections out, but a client that sends a header line
    every few seconds would hold its connection (and a file handle) forever: thousands of those
    exhaust the process's files. Imported lazily: only app.py's server needs uvicorn."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        _header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._watch_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_headers()

        def connection_lost(self, exc):
            self._stop_watch()
            super().connection_lost(exc)

        def _watch_headers(self) -> None:
            # IDLE on the client's side: its next request line and headers are not all here yet
            # (keep-alive waits between requests have uvicorn's own, shorter, limit).
            waiting_for_headers = self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]
            if self.conn.their_state is h11.IDLE and (waiting_for_headers or self.cycle is None):
                if self._header_timer is None:
                    self._header_timer = self.loop.call_later(timeout_s, self._headers_too_slow)
            else:
                self._stop_watch()

        def _stop_watch(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutH11
