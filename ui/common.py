"""Shared constants and helpers of the UI tabs: work folders, uploads, errors."""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from pipelines import MODES, PipelineError, get_spec, load_document, load_pipeline
from pipelines.admission import WORK
from pipelines.documents import DOCUMENT_SUFFIXES
from pipelines.engines.openai_engine import session_base_urls
from pipelines.region import parse_box
from ui.storage import new_work_dir

log = logging.getLogger("chatvlmllm")
ASSETS = Path(__file__).parent.parent / "assets"
# The examples gallery: each example with the model, mode and language that read it well offline.
EXAMPLES = [  # (file in assets/, label, model, mode, language)
    ("paper_two_column.pdf", "Two-column paper (PDF)", "classic", "layout_all", ""),
    ("invoice.png", "Invoice with a table", "classic", "layout_all", ""),
    ("receipt.jpg", "Receipt photo", "classic", "text_only", ""),
    ("letter_ru.png", "Russian letter", "classic", "layout_all", "rus+eng"),
]
LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]  # no single-$ delimiters: prices like $5 must stay text
MODEL_DIRS_ENV = "CHATVLMLLM_MODEL_DIRS"
PAGE_TIME_LIMIT_S = float(os.environ.get("CHATVLMLLM_PAGE_TIME_LIMIT_S", "600"))
STREAM_INTERVAL_S = float(os.environ.get("CHATVLMLLM_STREAM_INTERVAL_S", "0.25"))  # push rate
# Events that run models share one concurrency group. A local VLM batches concurrent requests
# (pipelines/engines/batcher.py), so several users at once cost little more than one.
MODEL_EVENTS = {"concurrency_limit": WORK.slots, "concurrency_id": "models"}
UPLOAD_TYPES = list(DOCUMENT_SUFFIXES)
CSS = """
.text-diff { white-space: pre-wrap; line-height: 1.6; }
.text-diff del { background: #fde2e1; color: #9f1c1c; }
.text-diff .diff-insert { background: #dcf5dd; color: #14622a; }
"""


READINESS_NOTE = {"bundled": "runs offline", "local": "weights on disk", "download": "downloads its weights",
                  "server": "on a server", "packages": "needs the VLM install (or a server)"}


def readiness_note(spec) -> str:
    """Whether a model can run at once, for the model lists; a download names its size once the
    hub has told it (never asked here: learn_download_sizes does that, off the page build)."""
    from pipelines.engines.hf_loading import known_download_gb, readiness

    status = readiness(spec)
    size = known_download_gb(spec) if status == "download" else None
    return f"downloads {size:,.1f} GB" if size else READINESS_NOTE[status]


def model_choice(spec, label: str | None = None) -> tuple[str, str]:
    """A model list entry that says before the click whether the model can run at once."""
    return f"{label or spec.label} · {readiness_note(spec)}", spec.key


def run_choices_noted() -> list[tuple[str, str]]:
    """Compare and Evaluate's run lists ('model:mode'), each saying whether its model can run."""
    from pipelines import list_models
    from pipelines.compare import run_choices

    notes = {spec.key: readiness_note(spec) for spec in list_models()}  # once a model, not once a mode
    return [(f"{label} · {notes[key.partition(':')[0]]}", key) for label, key in run_choices()]


_learning = threading.Lock()


def learn_download_sizes() -> None:
    """Ask the hub (where it is reachable; each answer is remembered) for the size of every model
    that would download its weights. The app runs it once in the background at start."""
    from pipelines import list_models
    from pipelines.engines.hf_loading import download_gb, readiness

    with _learning:  # one asker at a time (each app started in a process starts one)
        for spec in list_models():
            if readiness(spec) == "download":
                download_gb(spec)


class ModelLists:
    """The UI's model lists (and what depends on them), built again in one event whenever a page
    opens: weights fetched since the app started, and download sizes the hub has told since
    (learn_download_sizes), show up."""

    def __init__(self) -> None:
        self.parts: list[tuple[list[gr.components.Component], Callable[[], list | tuple]]] = []

    def add(self, dropdown: gr.Dropdown, choices: Callable[[], list]) -> None:
        self.parts.append(([dropdown], lambda: [gr.update(choices=choices())]))

    def add_updates(self, components: list[gr.components.Component], updates: Callable[[], list | tuple]) -> None:
        """Components rebuilt together: `updates` returns a value or gr.update(...) for each."""
        self.parts.append((components, updates))

    def refresh_on_load(self, demo: gr.Blocks) -> None:
        components = [c for group, _ in self.parts for c in group]

        def refreshed():
            try:
                return [update for _, updates in self.parts for update in updates()]
            except Exception:  # noqa: BLE001 - what was built at start stays; the page must open
                logging.getLogger(__name__).exception("rebuilding the model lists failed")
                return [gr.skip() for _ in components]

        # Cheap (no hub request) and run on every page open: kept out of the queue that models wait in.
        demo.load(refreshed, None, components, api_visibility="private", show_progress="hidden", queue=False)


def mode_choices(model: str) -> list[tuple[str, str]]:
    return [(MODES[m], m) for m in get_spec(model).modes]


def parse_region(text: str | None) -> tuple[float, float, float, float] | None:
    """'x1, y1, x2, y2' in page pixels -> a box; empty -> None."""
    try:
        return parse_box(text)
    except PipelineError as error:
        raise gr.Error(error.message) from None


def user_error(error: BaseException, action: str) -> gr.Error:
    """What the user sees for a failure: our messages as they are; anything else is logged."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, PipelineError):
        return gr.Error(error.message)
    if isinstance(error, MemoryError):
        return gr.Error("Out of memory on this document: select fewer pages or lower the DPI.")
    log.error("%s failed", action, exc_info=error)
    return gr.Error(f"{action} failed unexpectedly ({type(error).__name__}); the error is logged.")


def model_event(fn):
    """A Gradio event that runs a model: it takes one of the work slots the REST routes use too
    (pipelines/admission.py), so neither door can overload the other; full means a clear error."""
    return WORK.limited(fn, busy=lambda error: gr.Error(error.message))


def run_with_stop(stop_button: gr.Button, trigger, fn, inputs, outputs, **event_options):
    """trigger(fn, ...) with the Stop button clickable only while fn runs: enabled first, in the
    same chain, and disabled when fn ends. Returns fn's event (for Stop's cancels)."""
    quick = {"api_visibility": "private", "queue": False}
    started = trigger(lambda: gr.update(interactive=True), None, stop_button, **quick)
    running = started.then(fn, inputs, outputs, **event_options)
    running.then(lambda: gr.update(interactive=False), None, stop_button, **quick)
    return running


def stop_cancels(stop_button: gr.Button, running: list) -> None:
    stop_button.click(lambda: gr.update(interactive=False), None, stop_button, cancels=running,
                      api_visibility="private", queue=False)


def uploaded_file(file) -> str:
    """The path of a file this server received as an upload, from an API endpoint's file argument.

    Endpoints made with gr.api take a plain dict: Gradio's upload-folder check only runs for
    payloads that carry FileData's meta marker, so a client could name any server file. Every
    such path must resolve (symlinks followed) inside Gradio's upload folder; the message is the
    same whether the named file exists or not."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", None)
    if not isinstance(path, str) or not path:
        raise gr.Error("Give the document as an uploaded file (gradio_client: handle_file(path)).")
    folder = os.path.realpath(get_upload_folder())
    resolved = os.path.realpath(path)
    if os.path.commonpath([folder, resolved]) != folder:
        raise gr.Error(f"Cannot read {path}: it was not uploaded by a user.")
    return resolved


def file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_page(file_path: str | None, page_number, dpi: float = 200):
    """One page (1-based) of an upload; a gr.Error that says what is wrong otherwise."""
    if not file_path:
        raise gr.Error("Upload an image or a PDF first (here or in the Parse tab).")
    try:
        return load_document(file_path, dpi=dpi, pages=str(max(1, int(page_number or 1))),
                             name=Path(file_path).name).pages[0]
    except PipelineError as error:
        raise gr.Error(error.message) from None


def save_image(image, name: str) -> str:
    path = new_work_dir() / name
    image.save(path)
    return str(path)


def share_upload(file_path: str | None):
    """The Parse tab's upload becomes the document of the other tabs too."""
    return (file_path,) * 3 if file_path else (gr.skip(),) * 3


def session_pipeline(model: str, server_urls: str | None = "", served_model: str | None = ""):
    """The pipeline a UI session runs: on the servers it chose in the Parse tab's Server fields
    (only URLs the operator allows: a public demo must not fetch arbitrary URLs), else the
    operator's configuration. Raises PipelineError for a refused URL."""
    if server_urls and server_urls.strip():
        return load_pipeline(model, backend="openai", base_urls=session_base_urls(server_urls),
                             served_model=(served_model or "").strip() or None)
    return load_pipeline(model)
