"""Text lines from Tesseract, for scripts the embedded recogniser cannot read (Cyrillic, Greek,
Arabic, ...).

No pip package ships recognition models for those scripts, but Debian's `tesseract-ocr-<code>`
packages do (and a Space installs them from packages.txt). The classic engine uses this module in
place of RapidOCR when a request names a language; the layout model and the assembly stay the same.
"""
from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import subprocess

import cv2
import numpy as np

from ..errors import EngineCapabilityError, EngineRunError
from ..layout import TextLine

# Tesseract's codes joined by "+", e.g. "rus" or "rus+eng"; nothing else reaches the command line.
LANGUAGE_CODES = re.compile(r"^[a-z][a-z_]{1,15}(\+[a-z][a-z_]{1,15}){0,4}$")
# Names shown in the UI for the codes people ask for most; any installed code works.
LANGUAGE_NAMES = {
    "rus": "Russian", "ukr": "Ukrainian", "bel": "Belarusian", "bul": "Bulgarian", "srp": "Serbian",
    "mkd": "Macedonian", "kaz": "Kazakh", "ell": "Greek", "ara": "Arabic", "heb": "Hebrew", "fas": "Persian",
    "hin": "Hindi", "tha": "Thai", "kor": "Korean", "jpn": "Japanese", "chi_tra": "Chinese (traditional)",
    "deu": "German", "fra": "French", "spa": "Spanish", "ita": "Italian", "por": "Portuguese", "pol": "Polish",
    "ces": "Czech", "tur": "Turkish", "vie": "Vietnamese", "eng": "English",
}
GAP_HEIGHTS = 1.5  # see _split_at_gaps
TIMEOUT_S = 300  # one page; a stuck process must not hold the engine for ever


def debian_package(code: str) -> str:
    return "tesseract-ocr-" + code.replace("_", "-").lower()


@functools.lru_cache(maxsize=1)
def installed_languages() -> tuple[str, ...]:
    """Codes of the installed Tesseract language data (empty when Tesseract is not installed)."""
    if not shutil.which("tesseract"):
        return ()
    try:
        listing = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(sorted(code for code in listing.split()[1:] if LANGUAGE_CODES.match(code) and code != "osd"))


def check_language(language: str) -> str:
    """The language (well-formed: ParseOptions checked it) when it is installed; otherwise a clear
    error that names what to install."""
    if not shutil.which("tesseract"):
        packages = " ".join(["tesseract-ocr", *(debian_package(c) for c in language.split("+"))])
        raise EngineCapabilityError("language_unavailable", f"Reading {language!r} needs Tesseract: install the Debian "
                                                    f"packages {packages} (on a Space: list them in packages.txt).")
    missing = [code for code in language.split("+") if code not in installed_languages()]
    if missing:
        packages = " ".join(debian_package(code) for code in missing)
        raise EngineCapabilityError("language_unavailable", f"No Tesseract language data for {', '.join(missing)}: install "
                                                    f"the Debian package(s) {packages} (on a Space: packages.txt).")
    return language


def read_lines(bgr: np.ndarray, language: str) -> tuple[list[TextLine], list[float]]:
    """Tesseract's text lines of the page (boxes in its pixels) and their mean word confidence (0-1)."""
    ok, png = cv2.imencode(".png", bgr)
    if not ok:
        raise EngineRunError("ocr_failed", "The page could not be handed to Tesseract.")
    # One thread: Tesseract's OpenMP threads spin and cost more than they give on a page.
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    try:
        done = subprocess.run(["tesseract", "stdin", "stdout", "-l", language, "tsv"], input=png.tobytes(),
                              capture_output=True, env=env, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EngineRunError("ocr_timeout", f"Tesseract did not finish the page within {TIMEOUT_S} s.") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise EngineRunError("ocr_failed", f"Tesseract failed on the page: {detail[0][:200]}")
    return lines_from_tsv(done.stdout.decode("utf-8", "replace"))


def lines_from_tsv(tsv: str) -> tuple[list[TextLine], list[float]]:
    """Words of Tesseract's TSV grouped by (block, paragraph, line) into lines."""
    words: dict[tuple[str, str, str], list[tuple[int, int, int, int, float, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        left, top, width, height = (int(row[k]) for k in ("left", "top", "width", "height"))
        key = (row["block_num"], row["par_num"], row["line_num"])
        words.setdefault(key, []).append((left, top, left + width, top + height, float(row["conf"]), text))
    lines, scores = [], []
    for line_words in words.values():
        for part in _split_at_gaps(sorted(line_words)):
            box = (float(min(w[0] for w in part)), float(min(w[1] for w in part)),
                   float(max(w[2] for w in part)), float(max(w[3] for w in part)))
            lines.append(TextLine(box, " ".join(w[5] for w in part)))
            scores.append(max(0.0, min(1.0, sum(w[4] for w in part) / len(part) / 100)))
    return lines, scores


def _split_at_gaps(words: list) -> list[list]:
    """Tesseract's line runs across table cells and aligned columns; split it where the gap
    between two words is wider than GAP_HEIGHTS x the line's height, as the embedded detector does."""
    height = max(w[3] - w[1] for w in words)
    parts = [[words[0]]]
    for word in words[1:]:
        if word[0] - parts[-1][-1][2] > GAP_HEIGHTS * height:
            parts.append([word])
        else:
            parts[-1].append(word)
    return parts
