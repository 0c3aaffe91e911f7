"""Start `python app.py` on a free local port for end-to-end tests and stop it afterwards.

Usage::

    with running_app() as base_url:
        requests.get(f"{base_url}/health")
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 90.0


class AppStartError(RuntimeError):
    """The app process died or did not answer /health in time; the message carries its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_log(log_file) -> str:
    log_file.flush()
    log_file.seek(0)
    return log_file.read().decode("utf-8", "replace")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and b'"ok"' in response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM; a second SIGTERM makes uvicorn stop waiting for open streams (Gradio heartbeats);
    SIGKILL as the last resort. Signals go to the app's own process group only."""
    for sig, wait_s in ((signal.SIGTERM, 3), (signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)


@contextlib.contextmanager
def running_app(timeout_s: float = STARTUP_TIMEOUT_S, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run app.py on 127.0.0.1:<free port>; yields its base URL, e.g. 'http://127.0.0.1:40123'."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process_env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=process_env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so stopping it cannot touch anything else
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not _healthy(f"{base_url}/health"):
                if process.poll() is not None:
                    raise AppStartError(
                        f"app.py exited with code {process.returncode} before answering /health:\n"
                        f"{_read_log(log_file)}"
                    )
                if time.monotonic() > deadline:
                    raise AppStartError(
                        f"app.py did not answer {base_url}/health within {timeout_s:.0f} s:\n{_read_log(log_file)}"
                    )
                time.sleep(0.25)
            yield base_url
        finally:
            _stop(process)
            running_app.last_log = _read_log(log_file)  # type: ignore[attr-defined]


running_app.last_log = ""  # type: ignore[attr-defined]
