"""OmniDocBench-style page ground truth: a JSON list of pages, each with `page_info.image_path`
(naming the document page, matched by file stem) and `layout_dets`, the page's annotated blocks
(`category_type`, `order`, `text`, `html` for tables, `ignore`).

Scored per page, following OmniDocBench's end-to-end evaluation in simplified form:
- text: 1 - normalised edit distance between the page's text blocks (in annotated order, without
  tables, formulas, figures and page furniture: headers, footers, page numbers, which the
  benchmark ignores too) and the output's text with its tables removed, both reduced to words
  like the Markdown ground truth (ground_truth.plain_text);
- tables: TEDS of each annotated table's HTML against the output's HTML tables (greedy pairing);
- reading order: where each text block is found in the output (fuzzy alignment), the normalised
  edit distance between the annotated order and the order found, as 1 - distance.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from ..errors import PipelineError
from .ground_truth import documents_by_stem, plain_text
from .teds import match_tables, table_trees

# Not read as the page's text: OmniDocBench ignores page furniture, and tables, formulas and
# figures are scored (or not) on their own.
NOT_TEXT = {"table", "table_caption", "table_footnote", "equation_isolated", "equation_caption", "figure",
            "header", "footer", "page_number", "page_footnote", "abandon", "text_mask", "need_mask"}
# A text block counts as found in the output where its best fuzzy alignment reaches this score.
FOUND = 80


@dataclass
class PageAnnotation:
    image_path: str
    blocks: list[dict]

    @property
    def stem(self) -> str:
        return Path(self.image_path).stem

    def text_blocks(self) -> list[str]:
        kept = [b for b in self.blocks if not b.get("ignore") and b.get("category_type") not in NOT_TEXT
                and str(b.get("text", "")).strip()]
        return [str(b["text"]) for b in sorted(kept, key=lambda b: (b.get("order") is None, b.get("order") or 0))]

    def tables(self) -> str:
        return "".join(str(b.get("html", "")) for b in self.blocks
                       if b.get("category_type") == "table" and not b.get("ignore") and b.get("html"))


def load_annotations(path: Path) -> list[PageAnnotation]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PipelineError("bad_truth", f"{path.name}: not an OmniDocBench JSON file ({error}).") from None
    if isinstance(data, dict):
        data = [data]
    pages = []
    for index, entry in enumerate(data if isinstance(data, list) else []):
        info = entry.get("page_info") if isinstance(entry, dict) else None
        blocks = entry.get("layout_dets") if isinstance(entry, dict) else None
        if not isinstance(info, dict) or not isinstance(blocks, list) or not info.get("image_path"):
            raise PipelineError("bad_truth", f"{path.name} entry {index}: needs page_info.image_path and layout_dets.")
        pages.append(PageAnnotation(str(info["image_path"]), [b for b in blocks if isinstance(b, dict)]))
    return pages


def score_page(annotation: PageAnnotation, markdown: str) -> dict:
    without_tables = re.sub(r"<table\b.*?</table>", " ", markdown, flags=re.S | re.I)
    blocks = [plain_text(text) for text in annotation.text_blocks()]
    output = plain_text(without_tables)
    scores: dict = {"text_blocks": len(blocks)}
    if blocks:
        scores["text"] = Levenshtein.normalized_similarity(" ".join(blocks), output)
        found = []
        for index, block in enumerate(blocks):
            alignment = fuzz.partial_ratio_alignment(block, output) if block else None
            if alignment and alignment.score >= FOUND:
                found.append((alignment.dest_start, index))
        order = [index for _, index in sorted(found)]
        scores["reading_order"] = Levenshtein.normalized_similarity(sorted(order), order) if order else 0.0
    truths = table_trees(annotation.tables())
    if truths:
        tables = match_tables(table_trees(markdown), truths)
        scores["tables"] = len(tables)
        scores["table_teds"] = sum(t["teds"] for t in tables) / len(tables)
    return scores


def annotated_pages(folder: Path, docs: Path) -> list[tuple[Path, int, PageAnnotation]]:
    """(document, page, annotation) for each page of the OmniDocBench JSON files in folder whose
    image_path names a document in docs: `x.png` is x.png's page 1, `paper_pg2.jpg` page 2 of
    paper.pdf (the document of that stem, whatever its type)."""
    documents = documents_by_stem(docs)
    found = []
    for path in sorted(folder.glob("*.json")):
        for annotation in load_annotations(path):
            stem, page = annotation.stem, 1
            if stem not in documents and (match := re.fullmatch(r"(.+)_pg(\d+)", stem)):
                stem, page = match.group(1), int(match.group(2))
            if stem in documents:
                found.append((documents[stem], page, annotation))
    return found


def summary(pages: list[dict]) -> dict:
    """Means over the pages that have each score."""
    means = {"pages": pages}
    for key in ("text", "reading_order", "table_teds"):
        values = [p[key] for p in pages if key in p]
        if values:
            means[key] = sum(values) / len(values)
    return means
