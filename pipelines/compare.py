"""One page through several models or modes: results side by side, timings, counts and a text diff.

Scheduling: runs on local engines share this machine's device, so different local models go one
after another, in the order asked (a model used twice is loaded once: the model manager keeps it).
The runs of one local model go at the same time: its batcher decodes them as one batch. Runs on
servers (engine "openai") go at the same time as each other and as the local ones.
"""
from __future__ import annotations

import difflib
import html
import json
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from .catalogue import get_spec, list_models
from .documents import Document, Page
from .engines import ParseOptions
from .errors import PipelineError
from .schema import CATEGORIES, MODES, PageResult

log = logging.getLogger(__name__)

MIN_RUNS, MAX_RUNS = 2, 4
SERVER_ENGINES = frozenset({"openai"})
# Local engines that decode concurrent requests of one model as one batch. The others (classic)
# run one page at a time: their runs go one after another, so each run's time is its own and not
# partly spent waiting for the other.
BATCHING_ENGINES = frozenset({"transformers"})
# Modes that need the user's input (a prompt, a region) are not offered for comparison.
INPUT_MODES = frozenset({"free_prompt", "region_text"})
TIMING_KEYS = ("load_s", "first_token_s", "total_s", "tokens_per_s")


@dataclass(frozen=True)
class Run:
    model: str
    mode: str

    @property
    def key(self) -> str:
        return f"{self.model}:{self.mode}"

    @property
    def label(self) -> str:
        return f"{self.model} · {MODES.get(self.mode, self.mode)}"

    @classmethod
    def parse(cls, text: str) -> Run:
        """'model:mode' (or just 'model', for its default mode), checked against the catalogue."""
        model, _, mode = str(text).strip().partition(":")
        spec = get_spec(model.strip())
        return cls(spec.key, spec.check_mode(mode.strip() or None))


def run_choices() -> list[tuple[str, str]]:
    """(label, 'model:mode') for every catalogue model and mode that needs no extra input."""
    return [(Run(s.key, m).label, Run(s.key, m).key) for s in list_models() for m in s.modes if m not in INPUT_MODES]


def parse_runs(texts: list[str] | str) -> list[Run]:
    """Runs from a list of 'model:mode' texts, or one comma-separated text."""
    if isinstance(texts, str):
        texts = texts.split(",")
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise PipelineError("bad_runs", "Runs are a list of 'model:mode' texts, e.g. ['classic:layout_all', "
                                        "'classic:text_only'].")
    runs = [Run.parse(t) for t in texts if t.strip()]
    if not MIN_RUNS <= len(runs) <= MAX_RUNS:
        raise PipelineError("bad_runs", f"Compare {MIN_RUNS} to {MAX_RUNS} runs (model:mode); got {len(runs)}.")
    if len(set(runs)) < len(runs):
        raise PipelineError("bad_runs", "Each run (model and mode) may appear once.")
    return runs


@dataclass
class Column:
    """One run's outcome: its page result, or the error that stopped it."""

    run: Run
    engine: str = ""
    result: PageResult | None = None
    error: str | None = None

    @property
    def markdown(self) -> str:
        return self.result.markdown if self.result else ""

    @property
    def timings(self) -> dict[str, float | None]:
        """load_s, first_token_s (None for engines without tokens), total_s, tokens_per_s (generated
        tokens per second of generation, prefill included)."""
        if self.result is None:
            return dict.fromkeys(TIMING_KEYS)
        timings, generated = self.result.timings, self.result.tokens.get("generated", 0)
        generate_s = timings.get("generate_s")
        return {
            "load_s": timings.get("load_s"),
            "first_token_s": timings.get("first_token_s"),
            "total_s": timings.get("total_s"),
            "tokens_per_s": generated / generate_s if generated and generate_s else None,
        }

    @property
    def counts(self) -> dict[str, int]:
        """Elements per category, in the categories' order; categories with none left out."""
        found = Counter(e.category for e in self.result.elements) if self.result else Counter()
        return {c: found[c] for c in CATEGORIES if found[c]}

    def summary_markdown(self) -> str:
        """Timings and element counts of this run, for display beside its result."""
        if self.error:
            return f"**Failed:** {self.error}"
        names = {"load_s": "load", "first_token_s": "first token", "total_s": "total", "tokens_per_s": "tokens/s"}
        shown = [f"{names[k]} {v:.2f}{'' if k == 'tokens_per_s' else ' s'}" for k, v in self.timings.items() if v is not None]
        counts = ", ".join(f"{c} {n}" for c, n in self.counts.items()) or "none"
        lines = [" · ".join(shown), "", f"Elements: {counts}"]
        if self.result and self.result.warnings:
            lines += ["", *[f"- {w}" for w in self.result.warnings]]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"model": self.run.model, "mode": self.run.mode, "label": self.run.label, "engine": self.engine,
                "timings": self.timings, "counts": self.counts, "error": self.error,
                "result": self.result.to_dict() if self.result else None}


@dataclass
class Comparison:
    source: str
    page: int  # 0-based
    width: int
    height: int
    columns: list[Column] = field(default_factory=list)

    SUMMARY_HEADERS = ("run", "engine", "elements", "characters", "load (s)", "first token (s)", "total (s)",
                       "tokens/s", "status")

    def summary_rows(self) -> list[list]:
        rows = []
        for column in self.columns:
            t = column.timings
            rows.append([
                column.run.label, column.engine,
                len(column.result.elements) if column.result else 0, len(column.markdown),
                *(None if t[k] is None else round(t[k], 2) for k in TIMING_KEYS),
                "error: " + column.error if column.error else "ok",
            ])
        return rows

    def markdown_table(self) -> str:
        def cell(value) -> str:
            text = "–" if value is None else str(value)
            return text.replace("|", "\\|").replace("\n", " ")

        lines = [f"Comparison of page {self.page + 1} of {self.source} ({self.width} x {self.height} px)", "",
                 "| " + " | ".join(self.SUMMARY_HEADERS) + " |", "|---" * len(self.SUMMARY_HEADERS) + "|"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.summary_rows()]
        lines += ["", "Elements by category:", ""]
        lines += [f"- {c.run.label}: " + (", ".join(f"{k} {n}" for k, n in c.counts.items()) or "none")
                  for c in self.columns]
        return "\n".join(lines) + "\n"

    def diff(self, a: int, b: int) -> TextDiff:
        return text_diff(self.columns[a].markdown, self.columns[b].markdown)

    def to_dict(self) -> dict:
        body = {"source": self.source, "page": self.page, "width": self.width, "height": self.height,
                "columns": [c.to_dict() for c in self.columns]}
        if len(self.columns) >= 2:
            first = self.diff(0, 1)
            body["diff"] = {"a": 0, "b": 1, "similarity": first.similarity, "html": first.html}
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


ColumnCallback = Callable[[int, Column], None]


def compare_page(page: Page, runs: list[Run], *, source: str = "page", options: ParseOptions = ParseOptions(),
                 on_column: ColumnCallback | None = None, pipeline_for: Callable | None = None) -> Comparison:
    """Every run on the same page; on_column(index, column) as each finishes (from worker threads).

    A run that fails (weights missing, mode refused) becomes a column with its error; the others go on.
    pipeline_for(model key) -> Pipeline picks where runs go (default load_pipeline: the operator's
    configuration; the UI passes the session's server choice).
    """
    if pipeline_for is None:
        from .pipeline import load_pipeline as pipeline_for

    width, height = page.size
    comparison = Comparison(source, page.number, width, height, [Column(run) for run in runs])
    document = Document(name=source, kind="image", pages=[page], page_count=1)

    def execute(index: int) -> None:
        column = comparison.columns[index]
        try:
            pipeline = pipeline_for(column.run.model)
            column.engine = pipeline.engine.name
            column.result = pipeline.parse_pages(document, column.run.mode, options).pages[0]
        except PipelineError as error:
            column.error = error.message
        except Exception as error:  # noqa: BLE001 - one broken run must not take the others down
            log.error("comparison run %s failed", column.run.key, exc_info=error)
            column.error = f"failed unexpectedly ({type(error).__name__}); the error is logged"
        if on_column:
            on_column(index, column)

    local, server = [], []
    engines = [_engine_name(run, pipeline_for) for run in runs]
    for index, engine in enumerate(engines):
        (server if engine in SERVER_ENGINES else local).append(index)

    def run_local() -> None:
        by_model: dict[str, list[int]] = {}
        for index in local:
            by_model.setdefault(runs[index].model, []).append(index)
        groups = [group for indices in by_model.values()
                  for group in ([indices] if engines[indices[0]] in BATCHING_ENGINES else [[i] for i in indices])]
        for indices in groups:  # one model at a time; its runs together where its engine batches them
            together = [threading.Thread(target=execute, args=(i,), name=f"compare-{i}", daemon=True)
                        for i in indices]
            for thread in together:
                thread.start()
            for thread in together:
                thread.join()

    threads = [threading.Thread(target=execute, args=(i,), name=f"compare-{i}", daemon=True) for i in server]
    threads.append(threading.Thread(target=run_local, name="compare-local", daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return comparison


def _engine_name(run: Run, pipeline_for: Callable) -> str:
    try:
        return pipeline_for(run.model).engine.name
    except PipelineError:
        return ""  # reported when the run executes


# -- text diff ---------------------------------------------------------------------------------

_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class TextDiff:
    """A word-level diff: (op, text) pieces with op "equal", "delete" (only in a) or "insert" (only in b)."""

    pieces: list[tuple[str, str]]
    similarity: float  # difflib's ratio over words, 0..1

    @property
    def html(self) -> str:
        """Sanitised HTML: deletions in <del>, insertions in <span class="diff-insert">, newlines as <br>."""
        from .render.sanitize import sanitize_html

        parts = []
        for op, text in self.pieces:
            escaped = html.escape(text, quote=False).replace("\n", "<br>")
            if op == "delete":
                parts.append(f"<del>{escaped}</del>")
            elif op == "insert":
                parts.append(f'<span class="diff-insert">{escaped}</span>')
            else:
                parts.append(escaped)
        return sanitize_html('<div class="text-diff">' + "".join(parts) + "</div>")


def text_diff(a: str, b: str) -> TextDiff:
    """Word-level diff of two texts; whitespace between words belongs to the pieces around it.

    The texts are Markdown (a column's), which spells "<" as "&lt;": entities are decoded first, so the
    pieces hold what a reader sees and .html escapes each character once (not "&amp;lt;")."""
    a, b = html.unescape(a), html.unescape(b)
    old, new = _TOKENS.findall(a), _TOKENS.findall(b)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    pieces: list[tuple[str, str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if pieces and pieces[-1][0] == op:
            pieces[-1] = (op, pieces[-1][1] + text)
        else:
            pieces.append((op, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", "".join(old[i1:i2]))
        else:
            add("delete", "".join(old[i1:i2]))
            add("insert", "".join(new[j1:j2]))
    words = difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False)
    return TextDiff(pieces, round(words.ratio(), 4))
