"""olmOCR-bench unit tests: one JSON object per line, each a check on one page's Markdown.

The test types and their fields follow the published olmOCR-bench format, and each is scored by
olmOCR-bench's rules (tests/test_evaluation.py compares the two scorers on the same outputs):

- present / absent: `text` found in the page (fuzzy: rapidfuzz's partial ratio at least
  1 - max_diffs / len(text)), optionally only in its `first_n` / `last_n` characters and
  ignoring case unless `case_sensitive`;
- order: some fuzzy match of `before` (at most `max_diffs` edits) starts before some match of `after`;
- table: a cell matching `cell` in some Markdown or HTML table has the given neighbours
  (`up`, `down`, `left`, `right`) and headings (`top_heading`, `left_heading`);
- baseline: the page is not blank (or, with `max_length`, is nearly blank), does not end in a
  long run of repeated n-grams, and holds no characters of scripts the page cannot contain.

Text is compared after the same normalisation (whitespace collapsed, Markdown bold/italics and
<b>/<i> removed, NFC, typographic quotes and dashes made ASCII). `math` tests need a KaTeX
renderer and are reported as skipped.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from fuzzysearch import find_near_matches
from rapidfuzz import fuzz

from ..errors import PipelineError
from .normalise import normalise
from .tables import Table, html_tables, markdown_tables

TYPES = ("present", "absent", "order", "table", "baseline", "math")
# Characters a baseline test refuses: CJK ideographs, kana and emoji (olmOCR-bench's set).
DISALLOWED = re.compile("[\u4e00-\u9fff\u3040-\u309f\u30a0-\u30ff\U0001f600-\U0001f64f\U0001f300-\U0001f5ff"
                        "\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff]")



@dataclass
class UnitTest:
    """One line of the tests file. Fields a type does not use keep their defaults."""

    pdf: str
    page: int
    id: str
    type: str
    max_diffs: int = 0
    checked: str | None = None
    url: str | None = None
    # present / absent
    text: str = ""
    case_sensitive: bool = True
    first_n: int | None = None
    last_n: int | None = None
    # order
    before: str = ""
    after: str = ""
    # table
    cell: str = ""
    up: str = ""
    down: str = ""
    left: str = ""
    right: str = ""
    top_heading: str = ""
    left_heading: str = ""
    ignore_markdown_tables: bool = False
    # baseline
    max_length: int | None = None
    max_length_skips_image_alt_tags: bool = False
    max_repeats: int = 30
    check_disallowed_characters: bool = True
    # math (not scored here)
    math: str = ""
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise PipelineError("bad_tests", f"Test {self.id or '?'!r}: {problem}.")
        for name in ("text", "before", "after", "cell", "up", "down", "left", "right", "top_heading", "left_heading"):
            setattr(self, name, normalise(getattr(self, name) or ""))

    def _problem(self) -> str:
        if not self.pdf or not self.id:
            return "pdf and id must not be empty"
        if self.type not in TYPES:
            return f"unknown type {self.type!r} (known: {', '.join(TYPES)})"
        if not isinstance(self.page, int) or self.page < 1:
            return "page must be a page number from 1"
        if not isinstance(self.max_diffs, int) or self.max_diffs < 0:
            return "max_diffs must be a whole number from 0"
        if self.type in ("present", "absent") and not normalise(self.text or "").strip():
            return "text must not be empty"
        if self.type == "order":
            before, after = normalise(self.before or ""), normalise(self.after or "")
            if not before.strip() or not after.strip():
                return "before and after must not be empty"
            if self.max_diffs > len(before) // 2 or self.max_diffs > len(after) // 2:
                return "max_diffs is more than half of before or after"
        if self.type == "table" and not normalise(self.cell or "").strip():
            return "cell must not be empty"
        return ""

    def run(self, markdown: str) -> tuple[bool | None, str]:
        """(passed, explanation); passed is None for a test this scorer does not run (math)."""
        return {"present": self._presence, "absent": self._presence, "order": self._order, "table": self._table,
                "baseline": self._baseline, "math": self._math}[self.type](markdown)

    # -- the test types --------------------------------------------------------------------------

    def _presence(self, markdown: str) -> tuple[bool, str]:
        query, text = self.text, normalise(markdown)
        if not self.case_sensitive:
            query, text = query.lower(), text.lower()
        if self.first_n and self.last_n:
            text = text[: self.first_n] + text[-self.last_n:]
        elif self.first_n:
            text = text[: self.first_n]
        elif self.last_n:
            text = text[-self.last_n:]
        threshold = 1.0 - self.max_diffs / max(len(query), 1)
        best = fuzz.partial_ratio(query, text) / 100.0
        found = best >= threshold
        if self.type == "present":
            return found, "" if found else f"{query[:40]!r} not found: best match {best:.3f} < {threshold:.3f}"
        return not found, "" if not found else f"{query[:40]!r} is there: best match {best:.3f} >= {threshold:.3f}"

    def _order(self, markdown: str) -> tuple[bool, str]:
        text = normalise(markdown)
        befores = find_near_matches(self.before, text, max_l_dist=self.max_diffs)
        afters = find_near_matches(self.after, text, max_l_dist=self.max_diffs)
        if not befores:
            return False, f"before {self.before[:40]!r} not found (max {self.max_diffs} edits)"
        if not afters:
            return False, f"after {self.after[:40]!r} not found (max {self.max_diffs} edits)"
        if min(m.start for m in befores) < max(m.start for m in afters):
            return True, ""
        return False, f"{self.before[:40]!r} never comes before {self.after[:40]!r}"

    def _table(self, markdown: str) -> tuple[bool, str]:
        tables = ([] if self.ignore_markdown_tables else markdown_tables(markdown)) + html_tables(markdown)
        if not tables:
            return False, "no tables found"
        threshold = _threshold(self.cell, self.max_diffs)
        reasons: list[str] = []
        for table in tables:
            for row, column in table.cells_matching(self.cell, threshold):
                failures = self._relations(table, row, column)
                if not failures:
                    return True, ""
                reasons.extend(failures)
        if not reasons:
            return False, f"no cell matches {self.cell!r} (threshold {threshold:.2f})"
        return False, f"cells match {self.cell!r} but not their neighbours: {'; '.join(reasons)}"

    def _relations(self, table: Table, row: int, column: int) -> list[str]:
        failures = []
        neighbours = {"up": (row - 1, column), "down": (row + 1, column), "left": (row, column - 1),
                      "right": (row, column + 1)}
        for name, (r, c) in neighbours.items():
            expected = getattr(self, name)
            if not expected or not table.has(r, c):  # a missing neighbour is not checked
                continue
            found = normalise(table.text(r, c))
            if _similarity(expected, found) < _threshold(expected, self.max_diffs):
                failures.append(f"{name} of ({row}, {column}) is {found!r}, not {expected!r}")
        for name, candidates in (("top_heading", table.top_headings(row, column)),
                                 ("left_heading", table.left_headings(row, column))):
            expected = getattr(self, name)
            if not expected:
                continue
            threshold = _threshold(expected, self.max_diffs)
            declared, in_headers, any_cell = candidates
            # Declared headings, then header rows/columns, then (only if no heading was found at
            # all) any non-empty cell above or to the left.
            best_text, best = _best_match(expected, declared, "", 0.0)
            if best < threshold:
                best_text, best = _best_match(expected, in_headers, best_text, best)
            if best < threshold and not best_text:
                best_text, best = _best_match(expected, any_cell, best_text, best)
            if not best_text:
                failures.append(f"no {name.replace('_', ' ')} for ({row}, {column})")
            elif best < threshold:
                failures.append(f"{name.replace('_', ' ')} {best_text!r} is not {expected!r}")
        return failures

    def _baseline(self, markdown: str) -> tuple[bool, str]:
        counted = markdown
        if self.max_length is not None and self.max_length_skips_image_alt_tags:
            counted = re.sub(r"!\[.*?\]\(.*?\)", "", markdown)
        letters = sum(c.isalnum() for c in counted)
        if self.max_length is not None:  # a blank-page check, and nothing else
            if letters > self.max_length:
                return False, f"{letters} characters on a page expected blank"
            return True, ""
        if letters == 0:
            return False, "no letters or digits"
        for size, count in enumerate(trailing_repeats(markdown), start=1):
            if count > self.max_repeats:
                return False, f"ends with {count} repeats of one {size}-gram"
        if self.check_disallowed_characters and (found := DISALLOWED.findall(markdown)):
            return False, f"characters of unexpected scripts: {''.join(found[:10])}"
        return True, ""

    def _math(self, markdown: str) -> tuple[None, str]:
        return None, "math tests need a KaTeX renderer: skipped"


def trailing_repeats(text: str, max_size: int = 5) -> list[int]:
    """For n = 1..max_size: how many times the text's last n characters repeat back to back at
    its end (whitespace runs count as one space)."""
    text = re.sub(r"\s+", " ", text)
    counts = []
    for size in range(1, max_size + 1):
        if len(text) < size:
            counts.append(0)
            continue
        tail, count, position = text[-size:], 0, len(text) - size
        while position >= 0 and text[position:position + size] == tail:
            count += 1
            position -= size
        counts.append(count)
    return counts


def _best_match(expected: str, texts: list[str], best_text: str, best: float) -> tuple[str, float]:
    for text in texts:
        text = normalise(text)
        if (similarity := _similarity(expected, text)) > best:
            best_text, best = text, similarity
    return best_text, best


def _threshold(expected: str, max_diffs: int) -> float:
    return max(0.5, 1.0 - max_diffs / max(len(expected), 1))


def _similarity(a: str, b: str) -> float:
    return fuzz.ratio(a, b) / 100.0


KNOWN_FIELDS = {f.name for f in fields(UnitTest)} - {"extra"}


def load_tests(path: str | Path) -> list[UnitTest]:
    """The tests of a JSONL file; a malformed line is an error naming its line number."""
    tests: list[UnitTest] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise PipelineError("bad_tests", f"{Path(path).name} line {number}: not JSON ({error.msg}).") from None
        if not isinstance(data, dict):
            raise PipelineError("bad_tests", f"{Path(path).name} line {number}: not a JSON object.")
        known = {k: v for k, v in data.items() if k in KNOWN_FIELDS}
        try:
            tests.append(UnitTest(**known, extra={k: v for k, v in data.items() if k not in KNOWN_FIELDS}))
        except TypeError as error:  # a required field is missing
            raise PipelineError("bad_tests", f"{Path(path).name} line {number}: {error}.") from None
    ids = [t.id for t in tests]
    if len(set(ids)) < len(ids):
        raise PipelineError("bad_tests", f"{Path(path).name}: test ids repeat ({sorted({i for i in ids if ids.count(i) > 1})[:5]}).")
    return tests
