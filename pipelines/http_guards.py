"""ASGI middleware for a public deployment: security headers on every answer, a time limit on
reading request bodies, and a disk budget checked before uploads are accepted."""
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


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = security_headers()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(n, v) for n, v in self.headers if n not in names]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTimeout(Exception):
    pass


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
        timed_out = False
        response_started = False

        async def timed_receive():
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                timed_out = True
                raise _BodyTimeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message):
            nonlocal response_started
            if timed_out and not response_started:
                return  # whatever the app makes of the broken body (a 400 "cannot parse"), the answer is ours
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except _BodyTimeout:
            pass
        if timed_out and not response_started:
            body = json.dumps({"error": {"code": "body_timeout", "message":
                               f"The request body did not arrive within {self.timeout_s:.0f} s."}}).encode()
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


class UploadDiskBudget:
    """Before Gradio takes an upload, old files are swept so uploads and results stay within the
    disk budget (see ui/storage.py); when even that cannot make room, the upload gets 507."""

    def __init__(self, app: ASGIApp, make_room: Callable[[int], bool], paths: tuple[str, ...] = ("/gradio_api/upload",)):
        self.app = app
        self.make_room = make_room
        self.paths = paths

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").endswith(self.paths):
            announced = dict(scope.get("headers", [])).get(b"content-length", b"0")
            size = int(announced) if announced.isdigit() else 0
            if not await asyncio.to_thread(self.make_room, size):
                body = json.dumps({"error": {"code": "disk_full", "message":
                                   "The server has no room for more uploads right now; try again later."}}).encode()
                await send({"type": "http.response.start", "status": 507,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
