"""The text normalisation olmOCR-bench applies before comparing: whitespace collapsed, Markdown
bold/italics and <b>/<i> removed, NFC, typographic quotes and dashes made ASCII."""
from __future__ import annotations

import re
import unicodedata

ASCII_FOR = {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "＿": "_", "–": "-", "—": "-",
             "‑": "-", "‒": "-", "−": "-", "\u00b5": "\u03bc"}


def normalise(text: str) -> str:
    text = re.sub(r"<br/?>", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\*\*(.*?)\*\*", r"\1", text)
    text = re.sub(r"__(.*?)__", r"\1", text)
    text = re.sub(r"</?[bi]>", "", text)
    text = re.sub(r"\*(.*?)\*", r"\1", text)
    text = re.sub(r"_(.*?)_", r"\1", text)
    text = unicodedata.normalize("NFC", text)
    for fancy, plain in ASCII_FOR.items():
        text = text.replace(fancy, plain)
    return text
