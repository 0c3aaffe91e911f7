"""Real OpenAI-compatible servers on 127.0.0.1 for tests, and small loopback helpers around them.

- running_transformers_serve(model_dir): `transformers serve DIR` on a free port; yields its /v1
  base URL. The model name requests must use is DIR exactly as given on the command line.
- shared_twin_server(key): one such server per test process for a tiny twin (tests/twins.py),
  started on first use and stopped when the process exits, so several test modules share it.
- RecordingProxy: an HTTP proxy in front of a server that records when each request started and
  ended (to see requests overlap), can answer the next requests with a given status or body, and
  can be stopped to make the server vanish mid-document.
- HangingServer: accepts connections and never answers.
"""
from __future__ import annotations

import atexit
import contextlib
import http.client
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from tests.app_server import _stop, free_port

STARTUP_TIMEOUT_S = 120.0


class ServerStartError(RuntimeError):
    """transformers serve died or did not answer /health in time; the message carries its log."""


@dataclass
class RunningServer:
    base_url: str  # http://127.0.0.1:PORT/v1
    model: str  # the name requests must use: the model directory as given on the command line
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def stop(self) -> None:
        _stop(self.process)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_transformers_serve(model_dir: str | Path, log_dir: str | Path,
                             timeout_s: float = STARTUP_TIMEOUT_S) -> RunningServer:
    port = free_port()
    model = str(model_dir)
    log_path = Path(log_dir) / f"transformers-serve-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "transformers.cli.transformers", "serve", model,
             "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "info"],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    server = RunningServer(f"http://127.0.0.1:{port}/v1", model, process, log_path)
    deadline = time.monotonic() + timeout_s
    while not _healthy(f"http://127.0.0.1:{port}/health"):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ServerStartError(f"transformers serve {model} did not start on port {port}:\n{server.log()}")
        time.sleep(0.2)
    return server


@contextlib.contextmanager
def running_transformers_serve(model_dir: str | Path, timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[RunningServer]:
    with tempfile.TemporaryDirectory(prefix="serve-log-") as log_dir:
        server = start_transformers_serve(model_dir, log_dir, timeout_s)
        try:
            yield server
        finally:
            server.stop()


_shared: dict[str, RunningServer] = {}
_shared_lock = threading.Lock()


def shared_twin_server(key: str) -> RunningServer:
    """transformers serve for the tiny twin `key`, one per test process (stopped at exit)."""
    from tests.twins import build_twin

    with _shared_lock:
        if key not in _shared:
            root = Path(tempfile.mkdtemp(prefix="served-twins-"))
            atexit.register(shutil.rmtree, root, True)
            server = start_transformers_serve(build_twin(key, root), root)
            atexit.register(server.stop)  # registered last, so it runs before the folder goes
            _shared[key] = server
        return _shared[key]


@dataclass
class Record:
    path: str
    started: float
    ended: float = 0.0
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] | None = None  # names in lower case

    def json(self) -> dict:
        import json

        return json.loads(self.body)


def max_overlap(records: list[Record]) -> int:
    """The most requests that were open at the same moment. A record the proxy has not closed yet
    (the client can read the last byte before the proxy's thread notes the end) is still open:
    counting its unset end (0.0) as the earliest event once lowered the count by one."""
    events = sorted([(r.started, 1) for r in records] + [(r.ended or math.inf, -1) for r in records])
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


class RecordingProxy:
    """http://127.0.0.1:PORT/v1 forwarding to an upstream server, recording each request."""

    def __init__(self, upstream_base_url: str | None = None):
        upstream = urlparse(upstream_base_url) if upstream_base_url else None
        self.upstream = (upstream.hostname, upstream.port) if upstream else None
        self.records: list[Record] = []
        self.canned: list[tuple[int, str, bytes]] = []  # (status, content type, body) for the next POSTs
        self.hold_s = 0.0  # each POST waits this long before it is forwarded (a slow link or busy server)
        # After gather_next(n), the next n POSTs wait until all n have arrived (or 60 s pass) before
        # any is forwarded: a deterministic way to see whether a client really sends them together.
        self.gather = 0
        self.arrived = 0  # POSTs since the last gather_next
        self.gather_timeout_stacks = ""  # every thread's stack when a gathering timed out
        self.all_arrived = threading.Condition(threading.Lock())
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def gather_next(self, count: int) -> None:
        """The next `count` POSTs wait for each other. (Counting restarts here: the proxy may have
        served other tests' requests, which must not count towards this gathering.)"""
        with self.all_arrived:
            self.gather, self.arrived = count, 0

    def _wait_for_the_gathering(self) -> None:
        with self.all_arrived:
            self.arrived += 1
            if self.arrived > self.gather:
                return
            self.all_arrived.notify_all()
            if not self.all_arrived.wait_for(lambda: self.arrived >= self.gather, timeout=60):
                # The client never had them all open at once: keep what every thread was doing
                # then, so a failing test says where the missing request was held up.
                self.gather_timeout_stacks = "\n".join(
                    f"--- {thread.name}\n" + "".join(traceback.format_stack(sys._current_frames()[thread.ident]))
                    for thread in threading.enumerate() if thread.ident in sys._current_frames())

    def answer_next(self, status: int, body: bytes | str, content_type: str = "application/json", times: int = 1) -> None:
        """The next `times` POST requests get this answer instead of the server's."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.canned.extend([(status, content_type, data)] * times)

    def posts(self) -> list[Record]:
        return [r for r in self.records if r.path.endswith("/chat/completions")]

    def stop(self) -> None:
        """Vanish: no new connections, open ones cut."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for sock in list(self.sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                with proxy.lock:
                    proxy.sockets.add(self.connection)

            def finish(self):
                with proxy.lock:
                    proxy.sockets.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_GET(self):
                self._forward(b"")

            def do_POST(self):
                self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _forward(self, body: bytes):
                record = Record(self.path, time.monotonic(), body=body, headers={k.lower(): v for k, v in self.headers.items()})
                with proxy.lock:
                    proxy.records.append(record)
                    canned = proxy.canned.pop(0) if proxy.canned and self.command == "POST" else None
                try:
                    if canned:
                        status, content_type, data = canned
                        self.send_response(status)
                        self.send_header("Content-Type", content_type)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        record.status, record.ended = status, time.monotonic()  # before the client can see the end
                        self.wfile.write(data)
                        return
                    if self.command == "POST":
                        proxy._wait_for_the_gathering()
                    if self.command == "POST" and proxy.hold_s:
                        time.sleep(proxy.hold_s)
                    self._relay(body, record)
                finally:
                    record.ended = record.ended or time.monotonic()

            def _relay(self, body: bytes, record: Record):
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                record.status = response.status
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while data := response.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                record.ended = time.monotonic()  # before the client can see the end
                self.wfile.write(b"0\r\n\r\n")
                upstream.close()

        return Handler


class HangingServer:
    """Accepts connections, reads nothing back, answers nothing: a stuck server."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                self.connections.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()
