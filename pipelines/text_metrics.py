"""Text similarity measures shared by the tests, the benchmarks and evaluation: one implementation
(rapidfuzz's edit distance), so a number means the same thing wherever it is computed."""
from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein

_WHITESPACE = re.compile(r"\s+")


def without_whitespace(text: str) -> str:
    """Line breaks and spacing are layout, not reading errors."""
    return _WHITESPACE.sub("", text)


def character_error_rate(reference: str, hypothesis: str, *, casefold: bool = False) -> float:
    """Edit distance over the reference's length, whitespace removed (and case, if casefold)."""
    reference, hypothesis = without_whitespace(reference), without_whitespace(hypothesis)
    if casefold:
        reference, hypothesis = reference.casefold(), hypothesis.casefold()
    return Levenshtein.distance(reference, hypothesis) / max(1, len(reference))
