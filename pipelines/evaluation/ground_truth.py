"""Page ground truth: a Markdown or text file per document page (in the documents' folder or a
folder of its own), scored by normalised edit distance.

`invoice.png` is scored against `invoice.md` (or `.txt`); page N of `paper.pdf` against
`paper_pg<N>.md` (`paper.md` stands for page 1). Both texts are normalised the
same way before comparing: Markdown emphasis, headings marks, list bullets, table pipes and HTML
tags removed, entities decoded, quotes and dashes made ASCII, whitespace collapsed. The score is
1 - Levenshtein distance / length of the longer text (rapidfuzz), from 0 to 1.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from ..documents import DOCUMENT_SUFFIXES
from .unit_tests import normalise

TRUTH_SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class PageTruth:
    document: Path
    page: int
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def documents_by_stem(docs: Path) -> dict[str, Path]:
    """The documents in docs by file stem; where a PDF and an image share one, the PDF (its pages
    are what `_pg<N>` names)."""
    documents: dict[str, Path] = {}
    for path in sorted(docs.iterdir(), key=lambda p: p.suffix.lower() == ".pdf"):  # PDFs last: they win
        if path.suffix.lower() in DOCUMENT_SUFFIXES and path.is_file():
            documents[path.stem] = path.resolve()
    return documents


def page_truths(truth: Path, docs: Path) -> list[PageTruth]:
    """The ground-truth files in truth and the page of a document in docs each belongs to."""
    documents = documents_by_stem(docs)
    truths = []
    for path in sorted(truth.iterdir()):
        if path.suffix.lower() not in TRUTH_SUFFIXES or not path.is_file():
            continue
        match = re.fullmatch(r"(.+)_pg(\d+)", path.stem)
        stem, page = (match.group(1), int(match.group(2))) if match and match.group(1) in documents else (path.stem, 1)
        if stem in documents:
            truths.append(PageTruth(documents[stem], page, path.resolve()))
    return truths


def plain_text(markdown: str) -> str:
    text = re.sub(r"<[^>]+>", " ", markdown)
    text = html.unescape(text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"(?m)^\s{0,3}#{1,6}\s+", "", text)
    text = re.sub(r"(?m)^\s*[-*+•]\s+", "", text)
    text = re.sub(r"(?m)^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", " ", text)
    text = text.replace("|", " ")
    return normalise(text).strip()


def similarity(truth: str, output: str) -> float:
    return Levenshtein.normalized_similarity(plain_text(truth), plain_text(output))
