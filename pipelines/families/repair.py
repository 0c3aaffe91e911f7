"""Repairs for damaged model output: JSON cut off mid-generation, and generation loops.

Every family's parser goes through these, so a truncated dots.ocr page and a looping Qwen answer
are handled the same way and warned about in the same words.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"^\s*```[A-Za-z]*\s*\n?(.*?)(?:\n?```\s*)?$", re.DOTALL)
# A backslash that does not start a JSON escape: models write LaTeX ("\frac", "\(") unescaped.
_BAD_ESCAPE = re.compile(r'\\(?!["\\/bfnrtu])')

# A loop is cut only when it is long: at least this many copies, covering at least this many chars
# (many more when the unit has no word in it: dot leaders and empty table rows are real content).
LOOP_MIN_COPIES = 6
LOOP_MIN_CHARS = 60
LOOP_MIN_CHARS_WORDLESS = 1000
LOOP_MAX_UNIT = 400
# A line repeated this many times in a row (blank lines aside) is a loop, not content.
LINE_RUN_LIMIT = 6
_TAG = re.compile(r"<[^>]+>")


@dataclass
class SalvagedList:
    """The complete JSON objects of a (possibly truncated) list, and what had to be given up."""

    items: list[Any]
    truncated: bool = False  # the output stopped inside an element, which was dropped
    malformed: int = 0  # complete-looking elements that still were not JSON


def strip_code_fence(text: str) -> str:
    """The body of a ```json ... ``` block (models add fences when asked for JSON)."""
    match = _FENCE.match(text)
    return match.group(1).strip() if match and text.lstrip().startswith("```") else text.strip()


def loads_lenient(text: str) -> Any:
    """json.loads that also accepts raw control characters and LaTeX-style lone backslashes."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        return json.loads(_BAD_ESCAPE.sub(r"\\\\", text), strict=False)


def salvage_json_list(text: str) -> SalvagedList:
    """The objects of a JSON list, keeping every complete one when generation stopped mid-element.

    Also reads a lone object, and objects written one after another without the enclosing list.
    """
    body = strip_code_fence(text)
    try:
        value = loads_lenient(body)
        if isinstance(value, list):
            return SalvagedList(value)
        if isinstance(value, dict):
            return SalvagedList([value])
    except json.JSONDecodeError:
        pass
    return _scan_objects(body)


def _scan_objects(body: str) -> SalvagedList:
    """Split text into top-level {...} objects by bracket depth, outside JSON strings."""
    start = min((i for i in (body.find("["), body.find("{")) if i >= 0), default=-1)
    if start < 0:
        return SalvagedList([], truncated=False, malformed=1 if body else 0)
    base = 1 if body[start] == "[" else 0
    result = SalvagedList([])
    depth, in_string, escaped, object_start = 0, False, False, -1
    for index in range(start, len(body)):
        char = body[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            if char == "{" and depth == base:
                object_start = index
            depth += 1
        elif char in "]}":
            depth -= 1
            if char == "}" and depth == base and object_start >= 0:
                try:
                    result.items.append(loads_lenient(body[object_start:index + 1]))
                except json.JSONDecodeError:
                    result.malformed += 1
                object_start = -1
            if depth < base:  # the list closed: anything after it is not part of the answer
                return result
    result.truncated = object_start >= 0 or depth > 0
    return result


def collapse_repetition(text: str) -> tuple[str, str | None]:
    """The text with generation loops cut, and a warning saying what was cut (None if nothing).

    Two shapes of loop: the output ends in many copies of one unit (the model never stopped), and
    one line repeated many times in a row.
    """
    warnings = []
    text, copies = _cut_tail_loop(text)
    if copies:
        warnings.append(f"the output ended in a loop of {copies} copies")
    text, removed = _cut_line_runs(text)
    if removed:
        warnings.append(f"removed {removed} repeated copies of a line")
    return text, ("repetition stopped: " + "; ".join(warnings)) if warnings else None


def _cut_tail_loop(text: str) -> tuple[str, int]:
    trimmed = text.rstrip()
    for period in range(1, min(LOOP_MAX_UNIT, len(trimmed) // LOOP_MIN_COPIES) + 1):
        unit = trimmed[-period:]
        end = len(trimmed)
        copies = 0
        while end >= period and trimmed[end - period:end] == unit:
            end -= period
            copies += 1
        wordless = not any(c.isalnum() for c in _TAG.sub("", unit))
        min_chars = LOOP_MIN_CHARS_WORDLESS if wordless else LOOP_MIN_CHARS
        if copies >= LOOP_MIN_COPIES and copies * period >= min_chars:
            # The loop may start mid-unit ("...business. Thank you..." repeats " Thank you ...
            # business."): step back over the part of a copy already written, keep one copy from there.
            partial = next(k for k in range(period - 1, -1, -1) if trimmed[:end].endswith(unit[period - k:]))
            start = end - partial
            return trimmed[:start + period], round((len(trimmed) - start) / period)
    return text, 0


def _cut_line_runs(text: str) -> tuple[str, int]:
    lines = text.split("\n")
    keep = [True] * len(lines)
    removed = 0

    def close(run: list[int]) -> None:
        nonlocal removed
        if len(run) >= LINE_RUN_LIMIT:
            for index in range(run[0] + 1, run[-1] + 1):  # the copies and the blank lines between
                keep[index] = False
            removed += len(run) - 1

    run: list[int] = []  # indices of the current run of identical lines
    for index, line in enumerate(lines):
        if not line.strip():
            continue  # blank lines neither break nor extend a run
        if run and line.strip() == lines[run[0]].strip():
            run.append(index)
            continue
        close(run)
        # Lines without words (empty table rows "| | |", "<tr><td></td></tr>", rules) repeat
        # legitimately in forms: they start no run.
        run = [index] if any(c.isalnum() for c in _TAG.sub("", line)) else []
    close(run)
    if not removed:
        return text, 0
    return "\n".join(line for line, kept in zip(lines, keep) if kept), removed
