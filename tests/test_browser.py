"""The Gradio UI in a real browser: upload a page, press Parse, read the layout, JSON and timings tabs.

Uses the system's Debian chromium through Playwright's sync API (never `playwright install`).
Without chromium the module is skipped, unless REQUIRE_BROWSER=1 makes that a failure.
Screenshots go to tests/artifacts/ (gitignored).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipelines import CATEGORIES

from tests.app_server import REPO_ROOT, running_app
from tests.pages import PAGE_ONE, write_png

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
FIRST_PARSE_TIMEOUT_MS = 120_000  # the first parse loads the OCR and layout models
UI_TIMEOUT_MS = 30_000


def _unavailable(reason: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def find_chromium() -> str | None:
    override = os.environ.get("CHROMIUM_PATH")
    if override:
        return override if Path(override).is_file() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        _unavailable("no chromium executable found (looked for /usr/bin/chromium; set CHROMIUM_PATH)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    return path


@pytest.fixture(scope="module")
def base_url(chromium_path):  # no server start when the browser is missing
    with running_app() as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1600, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.uncaught_errors = []  # JavaScript exceptions thrown in the page
    page.on("pageerror", lambda error: page.uncaught_errors.append(str(error)))
    page.goto(f"{base_url}/", wait_until="domcontentloaded")
    page.locator("#parse-button").wait_for(state="visible")
    yield page
    context.close()


@pytest.fixture(scope="module")
def page_png(tmp_path_factory) -> Path:
    return write_png(tmp_path_factory.mktemp("browser_pages") / "page.png", PAGE_ONE)


def test_ui_loads(page):
    assert page.title() == "ChatVLMLLM"
    assert page.locator("#parse-button").inner_text().strip() == "Parse"
    assert page.locator("input[type=file]").count() == 1, "exactly one upload input expected"
    tabs = [t.strip() for t in page.get_by_role("tab").all_inner_texts()]
    for name in ("Layout", "Markdown", "Raw Markdown", "JSON", "Timings"):
        assert name in tabs, tabs
    # Nothing parsed yet: no annotated image.
    assert page.locator("#annotated-page img[src]").count() == 0
    assert page.uncaught_errors == []


def test_upload_parse_and_read_tabs(page, page_png):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ("parse_tab.png", "json_tab.png"):
        (ARTIFACTS / old).unlink(missing_ok=True)

    upload = page.locator("#parse-upload")
    upload.locator("input[type=file]").set_input_files(str(page_png))
    # The upload has reached the server once the Parse tab's file component shows its name.
    upload.get_by_text(page_png.name, exact=True).first.wait_for(state="visible", timeout=FIRST_PARSE_TIMEOUT_MS)
    page.locator("#parse-button").click()

    image = page.locator("#annotated-page img[src]").first
    image.wait_for(state="visible", timeout=FIRST_PARSE_TIMEOUT_MS)
    src = image.get_attribute("src")
    assert src and "page_001.png" in src, src
    # The browser really loaded the annotated page at its full size.
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=image.element_handle(), timeout=UI_TIMEOUT_MS
    )
    natural = image.evaluate("el => [el.naturalWidth, el.naturalHeight]")
    assert natural == [1240, 1754], natural
    page.screenshot(path=str(ARTIFACTS / "parse_tab.png"), full_page=True)

    page.get_by_role("tab", name="JSON").click()
    json_view = page.locator("#page-json")
    json_view.get_by_text('"bbox"').first.wait_for(state="visible")
    json_text = json_view.inner_text()
    assert "bbox" in json_text, json_text[:500]
    shown = [c for c in CATEGORIES if f'"{c}"' in json_text]
    assert shown, f"no category name in the JSON view:\n{json_text[:1000]}"
    assert "Text" in shown, shown
    assert PAGE_ONE[0] in json_text, "the recognised title should be in the page JSON"
    page.screenshot(path=str(ARTIFACTS / "json_tab.png"), full_page=True)

    page.get_by_role("tab", name="Timings").click()
    timings = page.locator("#timings")
    timings.get_by_text("classic").first.wait_for(state="visible")
    timings_text = timings.inner_text()
    assert "classic" in timings_text and "layout_all" in timings_text, timings_text
    assert "1 page(s)" in timings_text, timings_text

    assert page.uncaught_errors == [], page.uncaught_errors
    for shot in ("parse_tab.png", "json_tab.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000, shot


def test_upload_a_pdf_then_parse_at_once_repeatedly_and_the_server_survives(page, base_url, tmp_path):
    """The upload is rendered by the other tabs' previews while the parse renders it too: PDFium
    is not thread-safe, and this used to kill the whole process (SIGSEGV) in 3 of 5 tries."""
    import requests

    from tests.pages import PAGE_TWO, write_pdf

    pdf = write_pdf(tmp_path / "two_pages.pdf", (PAGE_ONE, PAGE_TWO))
    for _ in range(3):
        page.goto(f"{base_url}/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Timings").click()
        page.locator("#parse-upload input[type=file]").set_input_files(str(pdf))
        page.locator("#parse-button").click()  # at once: the other tabs' previews render the same PDF
        page.locator("#timings").get_by_text("2 page(s)").first.wait_for(state="visible",
                                                                          timeout=FIRST_PARSE_TIMEOUT_MS)
        assert requests.get(f"{base_url}/health", timeout=10).json() == {"status": "ok"}
    assert page.uncaught_errors == [], page.uncaught_errors


def test_stop_is_clickable_only_while_a_parse_runs(page, page_png):
    stop = page.locator("#stop-button")
    assert stop.is_disabled()  # nothing runs yet
    page.locator("#parse-upload input[type=file]").set_input_files(str(page_png))
    page.locator("#parse-upload").get_by_text(page_png.name, exact=True).first.wait_for(state="visible")
    page.locator("#parse-button").click()
    page.wait_for_function("() => !document.querySelector('#stop-button').disabled", timeout=UI_TIMEOUT_MS)
    page.locator("#annotated-page img[src]").first.wait_for(state="visible", timeout=FIRST_PARSE_TIMEOUT_MS)
    page.wait_for_function("() => document.querySelector('#stop-button').disabled", timeout=UI_TIMEOUT_MS)
    assert page.uncaught_errors == [], page.uncaught_errors


def test_examples_show_thumbnails_and_load_their_settings(page):
    """The gallery shows a picture of each example; the Russian letter loads with rus+eng and
    reads in Russian (where Tesseract with Russian is installed)."""
    from tests.test_languages import needs_russian

    examples = page.locator("#parse-examples")
    thumbnails = examples.locator("img")
    thumbnails.first.wait_for(state="visible")
    assert thumbnails.count() == 4
    page.wait_for_function("() => [...document.querySelectorAll('#parse-examples img')]"
                           ".every(img => img.complete && img.naturalWidth === 200)")
    examples.get_by_text("letter_ru.png").first.click()
    page.wait_for_function("document.querySelector('#parse-upload').innerText.includes('letter_ru')")
    assert "(rus+eng;" in page.locator("#language input").input_value()  # the choice labelled with its code
    if needs_russian.args[0]:
        pytest.skip(needs_russian.kwargs["reason"])
    page.locator("#parse-button").click()
    page.get_by_role("tab", name="Raw Markdown").click()
    page.get_by_text("Уважаемый Павел Сергеевич!").first.wait_for(state="visible", timeout=FIRST_PARSE_TIMEOUT_MS)
    assert page.uncaught_errors == [], page.uncaught_errors


def test_a_typed_page_number_and_enter_turn_the_page(page, tmp_path):
    from tests.pages import PAGE_TWO, write_pdf

    pdf = write_pdf(tmp_path / "two_pages.pdf", (PAGE_ONE, PAGE_TWO))
    page.locator("#parse-upload input[type=file]").set_input_files(str(pdf))
    page.locator("#parse-upload").get_by_text("two_pages.pdf", exact=True).first.wait_for(state="visible")
    page.locator("#parse-button").click()
    page.wait_for_function("() => document.querySelector('#stop-button').disabled "
                           "&& document.querySelector('#annotated-page img[src]')", timeout=FIRST_PARSE_TIMEOUT_MS)
    assert "page_001.png" in page.locator("#annotated-page img[src]").first.get_attribute("src")
    number = page.locator("#page-slider input[type=number]")
    number.fill("2")
    number.press("Enter")  # no slider drag, no leaving the box
    page.wait_for_function("document.querySelector('#annotated-page img[src]').src.includes('page_002.png')",
                           timeout=UI_TIMEOUT_MS)
    page.get_by_role("tab", name="JSON").click()
    json_view = page.locator("#page-json")
    json_view.get_by_text('"page"').first.wait_for(state="visible")
    # The contract's 0-based page number, labelled for people: page 2 is "page": 1.
    shown = " ".join(json_view.inner_text().split())
    assert shown.startswith('Page JSON ("page" counts from 0: page 1 is "page": 0) { "page" : 1 ,'), shown[:200]
    assert PAGE_TWO[0] in shown
    assert page.uncaught_errors == [], page.uncaught_errors
