"""README's screenshots, one per tab, taken from the running app in a real browser (Debian's
chromium through Playwright) on a machine without a GPU or downloaded weights, so they show what
a newcomer sees: `classic` on the example documents.

    python docs/make_screenshots.py     # writes docs/screenshots/<tab>.png
    python docs/make_screenshots.py --app-python VENV/bin/python   # the app from another install

README's screenshots show the app as README's first command installs it (no local VLMs): a
virtualenv with requirements-cpu.txt, whose Python runs the app, while this script's Python
(with Playwright) drives the browser.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots"
RUN_TIMEOUT_MS = 180_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(port: int, python: str) -> subprocess.Popen:
    app = subprocess.Popen([python, "app.py", "--port", str(port)], cwd=REPO,
                           env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    for _ in range(240):
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return app
        except requests.RequestException:
            time.sleep(0.5)
    app.kill()
    raise SystemExit("the app did not start")


def shoot(page, name: str, at: str | None = None) -> None:
    """The viewport, scrolled to the top of the page or to the element `at` names."""
    if at:
        page.locator(at).first.evaluate("el => el.scrollIntoView({block: 'start'})")
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(800)  # let images and fonts settle
    page.screenshot(path=str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-python", default=sys.executable, help="the Python that runs the app")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    app = start_app(port, args.app_python)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.locator("#parse-button").wait_for()

            # Parse: the two-column paper example (a 2-page PDF), parsed with classic.
            page.locator("#parse-examples").get_by_text("paper_two_column.pdf").first.click()
            page.wait_for_function("document.querySelector('#parse-upload').innerText.includes('paper_two_column')")
            page.locator("#parse-button").click()
            page.locator("#annotated-page img[src]").first.wait_for(timeout=RUN_TIMEOUT_MS)
            page.wait_for_function("() => document.querySelector('#stop-button').disabled", timeout=RUN_TIMEOUT_MS)
            shoot(page, "parse")
            page.get_by_role("tab", name="Markdown", exact=True).click()
            shoot(page, "parse_markdown")

            # Chat: the page is there; the note says what chatting needs on this machine.
            page.get_by_role("tab", name="Chat").click()
            page.locator("#chat-page img[src]").first.wait_for()
            shoot(page, "chat")

            # Compare: the two runs it opens with (classic layout + text, text only).
            page.get_by_role("tab", name="Compare").click()
            page.locator("#compare-button").click()
            page.locator("#compare-column-2 img[src]").first.wait_for(timeout=RUN_TIMEOUT_MS)
            page.locator('[aria-label="comparison.json"]').wait_for(timeout=RUN_TIMEOUT_MS)
            shoot(page, "compare")

            # Region: a typed box around the results table, read by classic.
            page.get_by_role("tab", name="Region").click()
            page.wait_for_function("document.querySelector('#region-info').innerText.includes('Paint over')")
            page.locator("#region-box textarea").fill("845, 1770, 1510, 2045")
            page.locator("#region-box textarea").press("Tab")
            page.wait_for_timeout(500)
            page.locator("#region-button").click()
            page.locator("#region-text table").wait_for(timeout=RUN_TIMEOUT_MS)
            shoot(page, "region", at="#region-button")

            # Evaluate: the example set scored with classic.
            page.get_by_role("tab", name="Evaluate").click()
            page.locator("#eval-button").click()
            page.wait_for_function("document.querySelector('#eval-scores').innerText.includes('%')",
                                   timeout=RUN_TIMEOUT_MS)
            shoot(page, "evaluate")

            # Models: the catalogue with where each model's weights are.
            page.get_by_role("tab", name="Models").click()
            page.locator("#catalogue").get_by_text("classic").first.wait_for()
            shoot(page, "models")
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)


if __name__ == "__main__":
    main()
