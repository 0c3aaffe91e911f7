"""Score runs (model:mode) on documents: parse each page the tests or ground truth name (reusing
outputs already in the output folder), run the tests, and write scores.json and scores.md.

    python -m pipelines eval --tests TESTS.jsonl --docs DIR --runs classic:layout_all --out results/

Layout of the output folder: one sub-folder per run holding `<document stem>_pg<page>.md`, the
page's Markdown (olmOCR-bench's own naming, so outputs made elsewhere can be scored too), then
scores.json and scores.md.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..compare import Run
from ..engines.base import ParseOptions
from ..documents import DOCUMENT_SUFFIXES
from ..errors import PipelineError
from .ground_truth import page_truths, similarity
from .omnidocbench import annotated_pages, score_page, summary
from .unit_tests import TYPES, UnitTest, load_tests


@dataclass
class RunScores:
    run: str
    tests: list[dict] = field(default_factory=list)  # one per test: id, type, pdf, page, passed, explanation
    truth: list[dict] = field(default_factory=list)  # one per ground-truth page: document, page, similarity
    failed_pages: list[dict] = field(default_factory=list)  # pages the run could not parse, with the error

    @property
    def pass_rate(self) -> float | None:
        scored = [t["passed"] for t in self.tests if t["passed"] is not None]
        return sum(scored) / len(scored) if scored else None

    def by_type(self) -> dict[str, float]:
        rates = {}
        for kind in TYPES:
            scored = [t["passed"] for t in self.tests if t["type"] == kind and t["passed"] is not None]
            if scored:
                rates[kind] = sum(scored) / len(scored)
        return rates

    def to_dict(self) -> dict:
        body = {"run": self.run, "pass_rate": self.pass_rate, "by_type": self.by_type(), "tests": self.tests}
        if self.truth:
            body["truth_similarity"] = sum(p["similarity"] for p in self.truth) / len(self.truth)
            body["truth"] = self.truth
        if self.failed_pages:
            body["failed_pages"] = self.failed_pages
        return body


def find_document(name: str, docs: Path) -> Path:
    """The file a test's `pdf` names, inside docs: its path, else its file name, else the same
    stem with any supported extension (a test may name x.pdf where the folder holds x.png)."""
    root = docs.resolve()
    for candidate in (docs / name, docs / Path(name).name):
        resolved = candidate.resolve()
        if resolved.is_file() and resolved.is_relative_to(root):
            return resolved
    stem = Path(name).stem
    for suffix in DOCUMENT_SUFFIXES:
        for candidate in (docs / Path(name).with_suffix(suffix), docs / f"{stem}{suffix}"):
            resolved = candidate.resolve()
            if resolved.is_file() and resolved.is_relative_to(root):
                return resolved
    raise PipelineError("not_found", f"No document {name!r} in {docs} (looked for {stem} as PDF or image).")


@dataclass(frozen=True)
class EvalRun:
    """model:mode, optionally :language (Tesseract codes for classic, e.g. classic:layout_all:rus+eng)."""

    run: Run
    language: str = ""

    @classmethod
    def parse(cls, text: str) -> EvalRun:
        head, _, language = str(text).strip().rpartition(":") if str(text).count(":") >= 2 else (text, "", "")
        ParseOptions(language=language or None)  # refuses anything but language codes
        return cls(Run.parse(head), language)

    @property
    def key(self) -> str:
        return self.run.key + (f":{self.language}" if self.language else "")


def output_path(out: Path, run: EvalRun, document: Path, page: int) -> Path:
    return out / _slug(run.key) / f"{document.stem}_pg{page}.md"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def evaluate(
    runs: list[str],
    docs: str | Path,
    out: str | Path,
    tests: str | Path | None = None,
    truth: str | Path | None = None,
    *,
    pipeline_for: Callable[[str], object] | None = None,
    dpi: float = 200,
    on_page: Callable[[str, str, int], None] | None = None,
    max_pages: int | None = None,
) -> dict:
    """Parse what the tests and the ground-truth files (in truth, else beside the documents) need
    with each run, score it, and write scores.json and scores.md into out. Returns the scores."""
    from ..pipeline import load_pipeline
    from ..render.markdown import page_markdown

    docs, out = Path(docs), Path(out)
    if not docs.is_dir():
        raise PipelineError("not_found", f"No documents folder {docs}.")
    parsed_runs = [EvalRun.parse(text) for text in runs]
    if not parsed_runs:
        raise PipelineError("bad_runs", "Give at least one run, e.g. classic:layout_all.")
    unit_tests: list[UnitTest] = load_tests(tests) if tests else []
    if truth is not None and not Path(truth).is_dir():
        raise PipelineError("not_found", f"No ground-truth folder {truth}.")
    truth_folder = Path(truth) if truth is not None else docs
    truths = page_truths(truth_folder, docs)
    annotations = annotated_pages(truth_folder, docs)
    if not unit_tests and not truths and not annotations:
        raise PipelineError("bad_tests", "Nothing to score: no tests file, and no ground truth (.md/.txt, or "
                                         f"OmniDocBench .json) naming the documents in {docs}.")
    pages: dict[tuple[Path, int], None] = {}
    missing: dict[str, str] = {}
    found: dict[str, Path] = {}  # a test's pdf -> its document (looked up once per name)
    for test in unit_tests:
        if test.pdf not in found and test.pdf not in missing:
            try:
                found[test.pdf] = find_document(test.pdf, docs)
            except PipelineError as error:
                missing[test.pdf] = error.message
        if test.pdf in found:
            pages[(found[test.pdf], test.page)] = None
    for truth in truths:
        pages[(truth.document, truth.page)] = None
    for document, page, _ in annotations:
        pages[(document, page)] = None
    if max_pages is not None and len(pages) > max_pages:
        raise PipelineError("too_large", f"The tests and ground truth name {len(pages)} pages; at most {max_pages} "
                                         "here (run python -m pipelines eval for more).")

    scores = []
    for run in parsed_runs:
        pipeline = (pipeline_for or load_pipeline)(run.run.model)
        mode = pipeline.spec.check_mode(run.run.mode)
        options = ParseOptions(language=run.language or None)
        result = RunScores(run.key)
        markdown: dict[tuple[Path, int], str | None] = {}
        for document, page in pages:
            path = output_path(out, run, document, page)
            if path.is_file():  # written by an earlier run of this command (or by another tool)
                markdown[(document, page)] = path.read_text(encoding="utf-8")
                continue
            if on_page:
                on_page(run.key, document.name, page)
            try:
                parsed = pipeline.parse_document(document, mode, pages=str(page), dpi=dpi, options=options).pages[0]
            except PipelineError as error:
                result.failed_pages.append({"document": document.name, "page": page, "error": error.message})
                markdown[(document, page)] = None
                continue
            failure = next((w for w in parsed.warnings if w.startswith("page failed")), None)
            if failure:
                result.failed_pages.append({"document": document.name, "page": page, "error": failure})
                markdown[(document, page)] = None
                continue
            text = page_markdown(parsed, picture_ref=None)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            markdown[(document, page)] = text
        for test in unit_tests:
            entry = {"id": test.id, "type": test.type, "pdf": test.pdf, "page": test.page}
            if test.pdf in missing:
                entry |= {"passed": False, "explanation": missing[test.pdf]}
            else:
                text = markdown[(found[test.pdf], test.page)]
                if text is None:
                    entry |= {"passed": False, "explanation": "the page could not be parsed"}
                else:
                    passed, explanation = test.run(text)
                    entry |= {"passed": passed, "explanation": explanation}
            result.tests.append(entry)
        for truth in truths:
            text = markdown[(truth.document, truth.page)]
            result.truth.append({"document": truth.document.name, "page": truth.page, "truth": truth.path.name,
                                 "similarity": 0.0 if text is None else similarity(truth.text, text)})
        body = result.to_dict()
        if annotations:
            body["omnidocbench"] = summary([
                {"document": document.name, "page": page, **score_page(annotation, markdown[(document, page)] or "")}
                for document, page, annotation in annotations])
        scores.append(body)
    report = {"runs": scores}
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "scores.md").write_text(scores_markdown(report), encoding="utf-8")
    return report


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def scores_markdown(report: dict) -> str:
    """A table: one row per run, its pass rate overall and per test type, and the ground-truth
    similarity; then each run's failed tests."""
    kinds = [k for k in TYPES if any(k in r["by_type"] for r in report["runs"])]
    truth = any("truth_similarity" in r for r in report["runs"])
    odb = any("omnidocbench" in r for r in report["runs"])
    head = ["run", "tests", "pass rate", *kinds] + (["truth similarity"] if truth else []) + \
        (["OmniDocBench text", "reading order", "table TEDS"] if odb else [])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in report["runs"]:
        cells = [f"`{r['run']}`", str(sum(t["passed"] is not None for t in r["tests"])), _percent(r["pass_rate"]),
                 *(_percent(r["by_type"].get(k)) for k in kinds)]
        if truth:
            cells.append(_percent(r.get("truth_similarity")))
        if odb:
            cells += [_percent(r.get("omnidocbench", {}).get(k)) for k in ("text", "reading_order", "table_teds")]
        lines.append("| " + " | ".join(cells) + " |")
    for r in report["runs"]:
        failed = [t for t in r["tests"] if t["passed"] is False]
        if failed:
            lines += ["", f"Failed in `{r['run']}`:", ""]
            lines += [f"- `{t['id']}` ({t['type']}, {t['pdf']} p{t['page']}): {t['explanation']}" for t in failed]
    return "\n".join(lines) + "\n"
