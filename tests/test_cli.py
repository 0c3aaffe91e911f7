"""`python -m pipelines parse`: outputs per page and per document, resuming, and the openai backend
against the real loopback server (tests/server_fixture.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from pipelines import DocumentResult, PageResult
from pipelines.cli import main
from tests.app_server import REPO_ROOT, free_port
from tests.pages import PAGE_ONE, PAGE_TWO, write_pdf, write_png
from tests.server_fixture import RecordingProxy, max_overlap, shared_twin_server

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

KEY = "qwen2_5_vl_3b"
TWIN_BUDGET = ["--min-pixels", str(28 * 28 * 4), "--max-pixels", str(28 * 28 * 48)]


def mtimes(directory) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir() if p.is_file()}


def test_classic_batch_writes_every_page_and_the_document_then_resumes(tmp_path, capsys):
    png = write_png(tmp_path / "letter.png")
    pdf = write_pdf(tmp_path / "report.pdf")
    out = tmp_path / "out"
    assert main(["parse", str(png), str(pdf), "--out", str(out)]) == 0
    report = out / "report"
    assert sorted(p.name for p in report.iterdir()) == [
        "document.json", "document.md", "page_001.json", "page_001.md", "page_001.png",
        "page_002.json", "page_002.md", "page_002.png"]
    page = PageResult.from_dict(json.loads((report / "page_002.json").read_text()))
    assert (page.page, page.model, page.mode) == (1, "classic", "layout_all") and page.elements
    assert Image.open(report / "page_002.png").size == (page.width, page.height)
    assert "Community Garden" in (report / "page_002.md").read_text()
    document = DocumentResult.from_json((report / "document.json").read_text())
    assert [p.page for p in document.pages] == [0, 1]
    assert (report / "document.md").read_text().split("\n\n---\n\n")[1] == (report / "page_002.md").read_text()
    assert "Quarterly Report" in (out / "letter" / "page_001.md").read_text()

    # Again: nothing is parsed or rewritten.
    before = mtimes(report)
    assert main(["parse", str(png), str(pdf), "--out", str(out)]) == 0
    assert "3 page(s) already written: skipped" in capsys.readouterr().err
    assert {k: v for k, v in mtimes(report).items() if k.startswith("page_")} == {
        k: v for k, v in before.items() if k.startswith("page_")}

    # A missing page is parsed on its own; another mode is another result, not a skip.
    (report / "page_002.json").unlink()
    assert main(["parse", str(pdf), "--out", str(out)]) == 0
    after = mtimes(report)
    assert after["page_001.json"] == before["page_001.json"] and (report / "page_002.json").is_file()
    assert "1 page(s) already written: skipped" in capsys.readouterr().err
    assert main(["parse", str(pdf), "--out", str(out), "--mode", "text_only", "--pages", "2"]) == 0
    assert json.loads((report / "page_002.json").read_text())["mode"] == "text_only"


def test_openai_backend_sends_pages_concurrently_and_resumes(tmp_path):
    server = shared_twin_server(KEY)
    proxy = RecordingProxy(server.base_url)
    proxy.gather_next(2)  # the first two requests wait for each other: sent one after another, they never would
    pdf = write_pdf(tmp_path / "four.pdf", pages=(PAGE_ONE, PAGE_TWO, PAGE_ONE, PAGE_TWO))
    out = tmp_path / "out"
    command = ["parse", str(pdf), "--out", str(out), "--model", KEY, "--backend", "openai",
               "--base-url", proxy.url, "--served-model", server.model, "--mode", "text_only",
               "--concurrency", "4", "--max-new-tokens", "48", *TWIN_BUDGET]
    try:
        assert main(command) == 0
        assert sorted(p.name for p in (out / "four").glob("page_*.json")) == [f"page_00{n}.json" for n in range(1, 5)]
        assert len(proxy.posts()) == 4 and max_overlap(proxy.posts()) >= 2
        (out / "four" / "page_003.json").unlink()
        assert main(command) == 0
        assert len(proxy.posts()) == 5  # only page 3 again
        assert DocumentResult.from_json((out / "four" / "document.json").read_text()).pages[2].page == 2
    finally:
        proxy.stop()


def test_failed_pages_are_not_written_and_the_next_run_retries_them(tmp_path, capsys):
    server = shared_twin_server(KEY)
    proxy = RecordingProxy(server.base_url)
    context_error = json.loads((REPO_ROOT / "tests" / "recorded" / "vllm_errors.json").read_text())
    proxy.answer_next(400, json.dumps(context_error["context_length_exceeded"]["body"]))
    pdf = write_pdf(tmp_path / "two.pdf")
    out = tmp_path / "out"
    command = ["parse", str(pdf), "--out", str(out), "--model", KEY, "--base-url", proxy.url,
               "--served-model", server.model, "--mode", "text_only", "--concurrency", "1",
               "--max-new-tokens", "8", *TWIN_BUDGET]
    try:
        assert main(command) == 1  # --base-url alone selects the openai backend
        err = capsys.readouterr()
        assert "page 1: " in err.err and "maximum context length" in err.err
        assert "1 page(s) written, 1 failure(s)" in err.out
        assert not (out / "two" / "page_001.json").exists() and (out / "two" / "page_002.json").exists()
        assert main(command) == 0
        assert len(proxy.posts()) == 3 and (out / "two" / "page_001.json").exists()
    finally:
        proxy.stop()


def test_a_missing_server_or_file_is_reported_with_a_nonzero_status(tmp_path, capsys):
    pdf = write_pdf(tmp_path / "two.pdf")
    url = f"http://127.0.0.1:{free_port()}/v1"
    status = main(["parse", str(pdf), str(tmp_path / "absent.png"), "--out", str(tmp_path / "out"),
                   "--model", KEY, "--base-url", url, "--served-model", "m", "--max-retries", "0"])
    err = capsys.readouterr().err
    assert status == 1
    assert f"Cannot reach the model server at {url}" in err and "No such file: absent.png" in err
    assert not list((tmp_path / "out").glob("*/page_*.json"))
    assert main(["parse", str(pdf), "--out", str(tmp_path / "o"), "--model", "nope"]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert main(["parse", str(pdf), "--out", str(tmp_path / "o"), "--model", KEY, "--backend", "openai"]) == 2
    assert "needs the server's address" in capsys.readouterr().err
    assert main(["parse", str(pdf), "--out", str(tmp_path / "o"), "--concurrency", "4"]) == 2
    assert "--concurrency do(es) not apply to the 'classic' backend" in capsys.readouterr().err


def test_module_entry_point_runs():
    completed = subprocess.run([sys.executable, "-m", "pipelines", "models"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "dots_ocr" in completed.stdout and "layout_all" in completed.stdout


def test_language_option_reads_the_russian_letter_or_says_what_is_wrong(tmp_path, capsys):
    from tests.test_languages import needs_russian

    letter = REPO_ROOT / "assets" / "letter_ru.png"
    assert main(["parse", str(letter), "--out", str(tmp_path / "o"), "--language", "rus;x"]) == 2
    assert "language must be Tesseract codes" in capsys.readouterr().err
    if needs_russian.args[0]:  # Tesseract with Russian is missing here
        pytest.skip(needs_russian.kwargs["reason"])
    assert main(["parse", str(letter), "--out", str(tmp_path / "out"), "--language", "rus+eng", "--no-progress"]) == 0
    markdown = (tmp_path / "out" / "letter_ru" / "page_001.md").read_text()
    assert "Уважаемый Павел Сергеевич!" in markdown
