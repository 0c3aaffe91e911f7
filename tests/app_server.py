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


# ---------------------------------------------------------------------------------------------
# Test pages rendered from known text, and the measure used to compare OCR output with it.
# ---------------------------------------------------------------------------------------------

PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
PDF_RESOLUTION = 150.0  # the PDF's pages are A4 when its images are placed at this dpi

PAGE_ONE = (
    "Quarterly Report on River Water Quality",
    (
        "The survey team visited twelve sampling sites along the river",
        "between March and June. Each site was sampled twice a month,",
        "and the water was tested for nitrates, phosphates and oxygen.",
        "Oxygen levels were healthy at most sites during the spring.",
        "Two sites downstream of the old mill showed higher nitrates.",
        "The team recommends monthly checks at those two sites next year.",
    ),
)
PAGE_TWO = (
    "Notes from the Community Garden Meeting",
    (
        "Forty members came to the autumn meeting in the village hall.",
        "The treasurer said that the seed fund has enough money left",
        "for new tomato plants, onions and a second compost bin.",
        "Volunteers agreed to water the beds every Tuesday evening.",
        "A small shed for tools will be built before the winter rain.",
        "The next meeting will be held on the first Monday of March.",
    ),
)


def render_page(title: str, lines: tuple[str, ...], size: tuple[int, int] = PAGE_SIZE):
    """A white page with a large title and body lines in Pillow's bundled scalable font."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    title_font = ImageFont.load_default(size=48)
    body_font = ImageFont.load_default(size=32)
    draw.text((120, 160), title, font=title_font, fill="black")
    y = 300
    for line in lines:
        assert 120 + draw.textlength(line, font=body_font) < size[0] - 60, f"line too long: {line!r}"
        draw.text((120, y), line, font=body_font, fill="black")
        y += 56  # 1.75 line spacing, as in a typed report
    return image


def page_text(page: tuple[str, tuple[str, ...]]) -> str:
    title, lines = page
    return "\n".join((title, *lines))


def write_png(path: Path, page=PAGE_ONE) -> Path:
    render_page(*page).save(path)
    return path


def write_pdf(path: Path, pages=(PAGE_ONE, PAGE_TWO)) -> Path:
    images = [render_page(*page) for page in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=PDF_RESOLUTION)
    return path


def normalise(text: str) -> str:
    """Whitespace removed and case folded: OCR line breaks and spacing do not count as errors."""
    return "".join(text.split()).casefold()


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(reference: str, hypothesis: str) -> float:
    reference, hypothesis = normalise(reference), normalise(hypothesis)
    assert reference, "empty reference text"
    return levenshtein(reference, hypothesis) / len(reference)
