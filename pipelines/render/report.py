"""Human-readable summaries of a result: timings, element counts, warnings."""
from __future__ import annotations

from collections import Counter

from ..schema import DocumentResult


def timings_markdown(result: DocumentResult) -> str:
    """A Markdown table of per-page timings (seconds) plus document totals and warnings."""
    keys: list[str] = []
    for page in result.pages:
        keys.extend(k for k in page.timings if k not in keys)
    header = "| page | " + " | ".join(keys) + " | elements |"
    rule = "|---" * (len(keys) + 2) + "|"
    rows = [
        f"| {page.page + 1} | "
        + " | ".join(f"{page.timings[k]:.2f}" if k in page.timings else "" for k in keys)
        + f" | {len(page.elements)} |"
        for page in result.pages
    ]
    totals = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
    counts = Counter(e.category for page in result.pages for e in page.elements)
    lines = [
        f"**{result.model}** · mode `{result.mode}` · {len(result.pages)} page(s) · {totals}",
        "",
        header, rule, *rows,
        "",
        "Elements: " + (", ".join(f"{c} {n}" for c, n in sorted(counts.items())) or "none"),
    ]
    warnings = [w for page in result.pages for w in page.warnings] + list(result.warnings)
    if warnings:
        lines += ["", "**Warnings**", *[f"- {w}" for w in warnings]]
    return "\n".join(lines)
