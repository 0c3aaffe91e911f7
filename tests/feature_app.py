"""One app with tiny twins for the Chat, Compare and Region tests, shared by their modules.

shared_feature_app() starts `python app.py` once per test process (on first use) with twins of
Qwen2-VL (chat with box tokens, region prompt), Qwen2.5-VL (chat with bbox_2d JSON) and GOT-OCR2
(region box, no chat), and stops it when the process exits. The pages are small (620 x 877 px) so
that a twin's 4,096-token context holds a page's image tokens and a conversation.
"""
from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.app_server import running_app
from tests.pages import PAGE_ONE, PAGE_TWO, render_page

TWINS = ("qwen2_vl_2b", "qwen2_5_vl_3b", "got_ocr2")
SMALL_PAGE = (620, 877)  # PAGE_ONE at half size


@dataclass(frozen=True)
class FeatureApp:
    url: str
    twins: dict[str, Path]  # catalogue key -> twin folder (the app loads these)
    png: Path  # one small page
    pdf: Path  # two small pages (the second is PAGE_TWO)


def small_page(page=PAGE_ONE):
    return render_page(*page).resize(SMALL_PAGE)


def write_small_documents(folder: Path) -> tuple[Path, Path]:
    png, pdf = folder / "page.png", folder / "two_pages.pdf"
    first, second = small_page(PAGE_ONE), small_page(PAGE_TWO)
    first.save(png)
    # At 150 dpi the PDF's pages are 4.1 x 5.8 in, rendered at 200 dpi: 827 x 1170 px.
    first.save(pdf, save_all=True, append_images=[second], resolution=150.0)
    return png, pdf


def build_twins(root: Path) -> dict[str, Path]:
    from tests.twins import build_twin

    return {key: build_twin(key, root) for key in TWINS}


_lock = threading.Lock()
_shared: FeatureApp | None = None


def shared_feature_app() -> FeatureApp:
    global _shared
    with _lock:
        if _shared is None:
            folder = Path(tempfile.mkdtemp(prefix="chatvlmllm-features-"))
            stack = contextlib.ExitStack()
            atexit.register(shutil.rmtree, folder, True)
            atexit.register(stack.close)  # runs first: the app stops before its folder goes
            twins = build_twins(folder / "twins")
            png, pdf = write_small_documents(folder)
            env = {"CHATVLMLLM_MODEL_DIRS": ",".join(f"{k}={v}" for k, v in twins.items()),
                   "HF_HUB_OFFLINE": "1", "CHATVLMLLM_STREAM_INTERVAL_S": "0"}
            url = stack.enter_context(running_app(env=env))
            _shared = FeatureApp(url, twins, png, pdf)
        return _shared
