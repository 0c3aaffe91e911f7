"""Public-demo hardening at the library level: PDFium serialised, memory bounded per request,
one error contract on REST, validated inputs, backpressure, the disk budget, admin-only unload."""
from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from pipelines import PipelineError
from pipelines import documents
from pipelines.compare import parse_runs
from pipelines.documents import Limits, load_document, mib
from pipelines.engines.base import ParseOptions
from pipelines.errors import DocumentError
from pipelines.region import box_from_values

REPO = Path(__file__).resolve().parent.parent


def blank_pdf(pages: int, width_pt: float, height_pt: float) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(width_pt, height_pt)
    buffer = io.BytesIO()
    pdf.save(buffer)
    pdf.close()
    return buffer.getvalue()


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------ PDFium, serialised


def test_every_pdfium_call_holds_the_lock(monkeypatch):
    """Opening and rendering happen only with PDFIUM_LOCK held (PDFium is not thread-safe)."""
    data = blank_pdf(3, 200, 300)
    calls = []
    real = pdfium.PdfDocument

    def checked(*args, **kwargs):
        calls.append(documents.PDFIUM_LOCK._is_owned())
        return real(*args, **kwargs)

    monkeypatch.setattr(pdfium, "PdfDocument", checked)
    document = load_document(data, dpi=72)
    sizes = [page.image.size for page in document.pages]
    assert sizes == [(200, 300)] * 3
    assert calls == [True] * 4  # one open to plan the pages, one per rendered page


def test_concurrent_pdf_rendering_does_not_crash_the_process(tmp_path):
    """Many threads rendering PDFs at once: a crash inside PDFium would kill the child process."""
    source = tmp_path / "doc.pdf"
    source.write_bytes((REPO / "assets" / "paper_two_column.pdf").read_bytes())
    script = f"""
import threading
from pipelines.documents import load_document
errors = []
def work():
    try:
        for _ in range(6):
            document = load_document({str(source)!r}, dpi=60)
            for page in document.pages:
                page.image.load()
    except Exception as error:
        errors.append(error)
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print("ok", len(errors))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok 0"


# ---------------------------------------------------------------------------- memory per request


def test_pdf_pages_render_only_when_used_and_are_released_after_parsing():
    from pipelines.pipeline import Pipeline
    from pipelines.catalogue import get_spec
    from pipelines.schema import PageResult

    document = load_document(blank_pdf(12, 200, 200), dpi=72)
    assert all(page._image is None for page in document.pages)  # nothing rendered yet
    assert [page.size for page in document.pages] == [(200, 200)] * 12
    rendered_at_once = []

    class CountingEngine:
        name = "counting"
        max_in_flight = 1

        def load(self):
            return 0.0

        def unload(self):
            pass

        def memory_bytes(self):
            return 0

        def expected_bytes(self):
            return 0

        decoding_note = ""

        def parse_page(self, page, mode, options):
            page.image  # noqa: B018 - render it, as a real engine does
            rendered_at_once.append(sum(p._image is not None for p in document.pages))
            return PageResult(page=page.number, width=page.size[0], height=page.size[1], model="x", mode=mode)

    pipeline = Pipeline(get_spec("classic"), CountingEngine(), name="counting-test")
    from pipelines import model_manager
    try:
        result = pipeline.parse_pages(document, "layout_all")
    finally:
        model_manager.MANAGER.unload("counting-test")
    assert len(result.pages) == 12
    assert rendered_at_once == [1] * 12  # one page in memory at a time
    assert all(page._image is None for page in document.pages)


@pytest.mark.parametrize("size", [(3000, 1), (1, 4500), (7000, 1), (2000, 19)])
def test_thin_images_are_refused_by_shape(size):
    with pytest.raises(DocumentError) as caught:
        load_document(png(*size))
    assert caught.value.code == "too_large" and caught.value.status == 413
    assert "max_aspect_ratio" in caught.value.message and f"{size[0]}x{size[1]}" in caught.value.message


def test_a_thin_pdf_page_is_refused_before_rendering():
    with pytest.raises(DocumentError) as caught:
        load_document(blank_pdf(1, 14400, 0.01))
    assert caught.value.status == 413 and "max_aspect_ratio" in caught.value.message


def test_total_pixels_of_a_request_are_bounded():
    # 200 pages of 200x200 inches: each is capped at 4500x4500 px; 60 of them are 1,215 MP.
    data = blank_pdf(200, 14400, 14400)
    with pytest.raises(DocumentError) as caught:
        load_document(data, pages="1-60")
    assert caught.value.status == 413
    assert "max_total_pixels" in caught.value.message and "1215 megapixels" in caught.value.message
    assert len(load_document(data, pages="1-40").pages) == 40  # 810 MP: within the budget, nothing rendered


def test_the_ocr_engine_pads_thin_pages_instead_of_growing_them():
    from pipelines.engines.classic import _padded_for_ocr

    thin = np.zeros((4, 3000, 3), dtype=np.uint8)
    padded = _padded_for_ocr(thin)
    assert padded.shape == (375, 3000, 3)
    assert (padded[:4] == 0).all() and (padded[4:] == 255).all()  # the page at the top left, white below
    assert _padded_for_ocr(np.zeros((4, 3, 3), np.uint8)).shape == (32, 32, 3)
    normal = np.zeros((1754, 1240, 3), np.uint8)
    assert _padded_for_ocr(normal) is normal


def test_a_thin_page_through_the_ocr_engine_stays_small(tmp_path):
    """3000x2 px through the classic engine directly (no intake check): RapidOCR alone would
    scale it to 45,000x30 and pad it to 45,000x11,250 (1.5 GB)."""
    script = """
import resource
from PIL import Image
from pipelines.documents import Page
from pipelines.engines.base import ParseOptions
from pipelines.engines.classic import ClassicEngine
engine = ClassicEngine(); engine.load()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = engine.parse_page(Page(Image.new("RGB", (3000, 2), "white"), 0), "layout_all", ParseOptions())
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, result.width, result.height)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    grown_mb, width, height = (int(v) for v in done.stdout.split())
    assert (width, height) == (3000, 2)
    assert grown_mb < 500, f"peak memory grew by {grown_mb} MB"


# ------------------------------------------------------------------------------- input checking


def test_a_page_number_of_5000_digits_is_a_clear_error():
    with pytest.raises(DocumentError) as caught:
        load_document(png(100, 100), pages="9" * 5000)
    assert caught.value.code == "bad_pages" and len(caught.value.message) < 120


def test_limits_print_in_one_unit():
    assert mib(Limits().max_bytes) == "50 MiB"
    with pytest.raises(DocumentError) as caught:
        load_document(b"\x89PNG\r\n\x1a\n" + b"0" * (3 * 2**19), limits=Limits(max_bytes=2**20))
    assert caught.value.message == "File is 1.5 MiB; the upload limit (max_bytes) is 1.0 MiB."


@pytest.mark.parametrize("options, message", [
    ({"max_new_tokens": -1}, "max_new_tokens must be a positive whole number, got -1."),
    ({"min_pixels": -5}, "min_pixels must be a positive whole number, got -5."),
    ({"max_pixels": 2.5}, "max_pixels must be a positive whole number, got 2.5."),
    ({"min_pixels": 900, "max_pixels": 100}, "min_pixels (900) is above max_pixels (100)."),
])
def test_parse_options_refuse_nonsense(options, message):
    with pytest.raises(PipelineError) as caught:
        ParseOptions(**options)
    assert caught.value.code == "bad_option" and caught.value.message == message


def test_runs_given_as_one_string_are_split_not_iterated():
    assert [r.key for r in parse_runs("classic:layout_all,classic:text_only")] == ["classic:layout_all", "classic:text_only"]
    with pytest.raises(PipelineError) as caught:
        parse_runs(None)  # type: ignore[arg-type]
    assert caught.value.code == "bad_runs"


@pytest.mark.parametrize("box", [None, "1,2,3,4", [1, 2, 3], [1, 2, "3", 4], [5, 5, 1, 1], [0, 0, float("nan"), 4]])
def test_region_boxes_from_the_api_are_checked(box):
    with pytest.raises(PipelineError) as caught:
        box_from_values(box)
    assert caught.value.code == "bad_region"


# ------------------------------------------------------------------------------------ disk budget


def test_make_room_removes_expired_then_oldest_files_and_keeps_pinned_and_fresh_folders(tmp_path, monkeypatch):
    import os

    from ui import storage

    uploads, work = tmp_path / "gradio", tmp_path / "work"
    monkeypatch.setattr(storage, "folders", lambda: [uploads, work])
    monkeypatch.setattr(storage, "_pinned", set())
    monkeypatch.setattr(storage, "_last_sweep", 0.0)
    monkeypatch.setattr(storage, "BUDGET_BYTES", 3000)
    monkeypatch.setattr(storage, "MAX_AGE_S", 3600)
    now = time.time()

    def file(path: Path, size: int, age_s: float) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_s, now - age_s))
        return path

    example = file(uploads / "ex" / "invoice.png", 500, 99999)
    storage.pin_existing()
    expired = file(uploads / "a" / "old.png", 100, 7200)
    oldest = file(work / "w1" / "page.png", 1000, 900)
    newer = file(work / "w2" / "page.png", 1000, 700)
    fresh = file(uploads / "b" / "upload.png", 500, 30)
    fresh_empty = work / "w3"
    fresh_empty.mkdir()

    assert storage.make_room(1000) is True  # 500 + 2500 + 1000 > 3000: the oldest (15 min) goes
    assert example.exists() and newer.exists() and fresh.exists()
    assert not expired.exists() and not oldest.exists()
    assert fresh_empty.is_dir()  # a request's new folder, not yet written to
    assert storage.make_room(10_000) is False  # could never fit: nothing more is deleted for it
    assert newer.exists()
    assert storage.make_room(1600) is True  # the 12-minute-old file goes
    assert fresh.exists() and not newer.exists()
    assert storage.make_room(2600) is False  # would fit only by deleting a file 30 s old: refused
    assert fresh.exists()


# ---------------------------------------------------------------------------------- admin actions


def test_unloading_needs_the_operator_token(monkeypatch):
    import gradio as gr

    from pipelines import load_pipeline
    from pipelines.model_manager import MANAGER
    from ui.models_tab import ADMIN_TOKEN_ENV, unload_model

    load_pipeline("classic").load()
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    with pytest.raises(gr.Error, match="operator action"):
        unload_model("classic", "")  # no token configured: nobody may
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "s3cret-token")
    with pytest.raises(gr.Error, match="operator action"):
        unload_model("classic", "guess")
    assert "classic" in [m.key for m in MANAGER.loaded()]
    message, _, _ = unload_model("classic", "s3cret-token")
    assert message == "Unloaded **classic**."
    assert "classic" not in [m.key for m in MANAGER.loaded()]
