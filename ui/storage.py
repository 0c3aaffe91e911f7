"""Disk used by uploads and results stays bounded: files older than CHATVLMLLM_CACHE_MAX_AGE_S
(default an hour) go, and when uploads plus results would pass CHATVLMLLM_DISK_BUDGET_MB (default
2048) the oldest go first, but never one younger than KEEP_FRESH_S (a full budget refuses new
uploads instead). Covers Gradio's upload/cache folder and the app's own work folders.
Files that exist when the app starts (the examples Gradio cached) are kept."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from gradio.utils import get_upload_folder

WORK_ROOT = Path(tempfile.gettempdir()) / "chatvlmllm"
MAX_AGE_S = float(os.environ.get("CHATVLMLLM_CACHE_MAX_AGE_S", "3600"))
BUDGET_BYTES = int(float(os.environ.get("CHATVLMLLM_DISK_BUDGET_MB", "2048")) * 2**20)
KEEP_FRESH_S = 600  # never deleted to make room: a file this young may be in use right now

SWEEP_EVERY_S = 2.0  # a sweep walks the folders: not for every image a busy app saves
_lock = threading.Lock()
_pinned: set[Path] = set()
_last_sweep = 0.0


def folders() -> list[Path]:
    return [Path(get_upload_folder()), WORK_ROOT]


def pin_existing() -> None:
    """Keep what is there now (example files cached while the UI was built)."""
    with _lock:
        _pinned.update(path for path, _, _ in _files())


def _files() -> list[tuple[Path, float, int]]:
    found = []
    for folder in folders():
        for root, _, names in os.walk(folder):
            for name in names:
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue  # removed meanwhile
                found.append((path, stat.st_mtime, stat.st_size))
    return found


def make_room(incoming_bytes: int = 0) -> bool:
    """Delete expired files; then, if incoming_bytes more would pass the budget, the oldest files
    of more than KEEP_FRESH_S, as many as needed. Files younger than that are never deleted to
    make room (they are someone's work in progress): a budget full of them means False, and
    nothing is deleted for a request that could not fit anyway."""
    global _last_sweep
    with _lock:
        now = time.time()
        if not incoming_bytes and now - _last_sweep < SWEEP_EVERY_S:
            return True
        _last_sweep = now
        files = sorted((f for f in _files() if f[0] not in _pinned), key=lambda f: f[1])
        used = sum(size for _, _, size in files) + sum(p.stat().st_size for p in _pinned if p.exists())
        for path, mtime, size in files:
            if now - mtime > MAX_AGE_S:
                path.unlink(missing_ok=True)
                used -= size
        files = [f for f in files if now - f[1] <= MAX_AGE_S]
        evictable = sum(size for _, mtime, size in files if now - mtime > KEEP_FRESH_S)
        if used - evictable + incoming_bytes <= BUDGET_BYTES:
            for path, mtime, size in files:
                if used + incoming_bytes <= BUDGET_BYTES or now - mtime <= KEEP_FRESH_S:
                    break
                path.unlink(missing_ok=True)
                used -= size
        _remove_empty_folders()
        return used + incoming_bytes <= BUDGET_BYTES


EMPTY_FOLDER_GRACE_S = 600  # a fresh work folder is empty until its request saves its first image


def _remove_empty_folders() -> None:
    for folder in folders():
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            try:
                idle = time.time() - child.stat().st_mtime > EMPTY_FOLDER_GRACE_S
            except OSError:
                continue
            if idle and child.is_dir() and not any(child.rglob("*")):
                shutil.rmtree(child, ignore_errors=True)


def new_work_dir() -> Path:
    """A fresh folder for one request's images and zip, after making room on the disk."""
    make_room()
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=WORK_ROOT))
