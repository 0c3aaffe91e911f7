"""The result contract every engine returns: Element, PageResult, DocumentResult.

One schema crosses every boundary (UI, REST, CLI, zip export); nothing else defines results.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# dots.ocr's layout categories; every engine maps its own labels onto these.
CATEGORIES: tuple[str, ...] = (
    "Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header",
    "Picture", "Section-header", "Table", "Text", "Title",
)

# Prompt modes; each catalogue model offers a subset.
MODES: dict[str, str] = {
    "layout_all": "Layout + text",
    "layout_only": "Layout only",
    "text_only": "Text only",
    "text_formatted": "Formatted text (Markdown / LaTeX)",
    "text_regions": "Text with regions",
    "region_text": "Text of a marked region",
    "table": "Table recognition",
    "formula": "Formula recognition",
    "chart": "Chart recognition",
    "free_prompt": "Free prompt",
}


@dataclass
class Element:
    """One region of a page: box in original-page integer pixels, category, Markdown text."""

    bbox: tuple[int, int, int, int]
    category: str
    text: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; expected one of {CATEGORIES}")
        x1, y1, x2, y2 = (int(round(v)) for v in self.bbox)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"empty bbox {self.bbox!r}: need x1<x2 and y1<y2")
        self.bbox = (x1, y1, x2, y2)

    def clipped(self, width: int, height: int) -> Element | None:
        """This element with its box clipped to the page, or None if nothing of it is on the page."""
        x1, y1, x2, y2 = self.bbox
        x1, x2 = max(0, min(x1, width)), max(0, min(x2, width))
        y1, y2 = max(0, min(y1, height)), max(0, min(y2, height))
        if x2 <= x1 or y2 <= y1:
            return None
        return Element((x1, y1, x2, y2), self.category, self.text)

    def to_dict(self) -> dict[str, Any]:
        return {"bbox": list(self.bbox), "category": self.category, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Element:
        return cls(tuple(data["bbox"]), data["category"], data.get("text", ""))


@dataclass
class PageResult:
    """Everything one engine produced for one page."""

    page: int
    width: int
    height: int
    model: str
    mode: str
    elements: list[Element] = field(default_factory=list)
    markdown: str = ""
    raw_output: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "generated": 0})
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elements"] = [e.to_dict() for e in self.elements]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageResult:
        fields = dict(data)
        fields["elements"] = [Element.from_dict(e) for e in data.get("elements", [])]
        return cls(**fields)


@dataclass
class DocumentResult:
    """The pages of one document, in page order, plus document-level timings and warnings."""

    source: str
    model: str
    mode: str
    pages: list[PageResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def markdown(self) -> str:
        return "\n\n".join(p.markdown for p in self.pages if p.markdown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "model": self.model, "mode": self.mode,
            "pages": [p.to_dict() for p in self.pages],
            "timings": dict(self.timings), "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentResult:
        return cls(
            source=data["source"], model=data["model"], mode=data["mode"],
            pages=[PageResult.from_dict(p) for p in data.get("pages", [])],
            timings=dict(data.get("timings", {})), warnings=list(data.get("warnings", [])),
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> DocumentResult:
        return cls.from_dict(json.loads(text))
