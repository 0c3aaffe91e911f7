"""Page geometry shared by engines: reading order, grouping text lines into regions and tables.

Boxes are (x1, y1, x2, y2) in page pixels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import median
from typing import Sequence

Box = tuple[float, float, float, float]

# An element this much wider than its group's content is a full-width separator (title, wide table).
SPANNING_FRACTION = 0.6
# Two groups are columns only if they share at least this share of the shorter one's height.
COLUMN_OVERLAP = 0.3
# Two neighbouring groups are the two sides of rows (term and description, key and value) when
# at least this share of the boxes on the side with fewer of them has a partner starting on the
# same line on the other side...
ROW_ALIGNED_SHARE = 0.7
# ...and the left side is not a column of prose: prose lines and paragraphs reach the column's
# right edge (within this share of its width) in most lines, terms and keys end wherever they end...
FULL_LINE_SLACK = 0.1
# ...or the left side is at most this share of the right side's width (short terms, long text).
NARROW_SIDE = 0.5


@dataclass
class TextLine:
    box: Box
    text: str


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """Indices of boxes in reading order, for single- and multi-column pages.

    Full-width boxes cut the page into horizontal bands; inside a band, vertical gaps that no box
    crosses separate columns, read left to right; each column is ordered the same way, recursively.
    """
    return _order(list(range(len(boxes))), boxes, depth=0)


def _order(indices: list[int], boxes: Sequence[Box], depth: int) -> list[int]:
    def top_to_bottom(group: list[int]) -> list[int]:  # boxes whose tops align: left to right
        return [i for row in _rows_by_top(group, boxes) for i in row] if group else []

    if len(indices) <= 1 or depth > 12:
        return top_to_bottom(indices)
    columns = _split_columns(indices, boxes)
    if len(columns) > 1 and _side_by_side(columns, boxes):
        ordered: list[int] = []
        for group in _row_groups(columns, boxes):
            if len(group) == 1:
                ordered.extend(_order(group[0], boxes, depth + 1))
            else:  # the sides of rows: each row left to right, rows top to bottom
                ordered.extend(i for row in _rows_by_top([i for column in group for i in column], boxes) for i in row)
        return ordered
    left = min(boxes[i][0] for i in indices)
    right = max(boxes[i][2] for i in indices)
    spanning_width = SPANNING_FRACTION * (right - left)
    wide = {i for i in indices if boxes[i][2] - boxes[i][0] >= spanning_width}
    # A separator has nothing beside it: a wide box sharing its line with a narrow one is a row's
    # part (a long description beside its term), not a break between bands.
    spanning = top_to_bottom([i for i in wide if not any(
        j not in wide and _shared_height(boxes[i], boxes[j]) > 0.3 * min(boxes[i][3] - boxes[i][1], boxes[j][3] - boxes[j][1])
        for j in indices)])
    if spanning and len(spanning) < len(indices):
        # Each other box goes into the band above the first separator whose centre is below its own.
        bands: list[list[int]] = [[] for _ in range(len(spanning) + 1)]
        separator_centres = [(boxes[s][1] + boxes[s][3]) / 2 for s in spanning]
        for i in indices:
            if i not in spanning:  # a box inside a separator (text on a picture) comes after it
                centre = (boxes[i][1] + boxes[i][3]) / 2
                bands[sum(1 for s, c in zip(spanning, separator_centres)
                          if c < centre or boxes[s][1] <= boxes[i][1] and boxes[i][3] <= boxes[s][3])].append(i)
        ordered: list[int] = []
        for band_index, band in enumerate(bands):
            ordered.extend(_order(band, boxes, depth + 1))
            if band_index < len(spanning):
                ordered.append(spanning[band_index])
        return ordered
    rows = _split_rows(indices, boxes)
    if len(rows) > 1:
        return [i for row in rows for i in _order(row, boxes, depth + 1)]
    return top_to_bottom(indices)


def _shared_height(a: Box, b: Box) -> float:
    return min(a[3], b[3]) - max(a[1], b[1])


def _side_by_side(columns: list[list[int]], boxes: Sequence[Box]) -> bool:
    """True when neighbouring groups share height, as real columns do (not a block above another)."""
    def extent(group: list[int]) -> tuple[float, float]:
        return min(boxes[i][1] for i in group), max(boxes[i][3] for i in group)

    for a, b in zip(columns, columns[1:]):
        (top_a, bottom_a), (top_b, bottom_b) = extent(a), extent(b)
        shared = min(bottom_a, bottom_b) - max(top_a, top_b)
        if shared < COLUMN_OVERLAP * min(bottom_a - top_a, bottom_b - top_b):
            return False
    return True


def _row_groups(columns: list[list[int]], boxes: Sequence[Box]) -> list[list[list[int]]]:
    """Neighbouring columns joined in pairs where they are the two sides of rows (ROW_ALIGNED_SHARE)."""
    groups = [[columns[0]]]
    for column in columns[1:]:
        # Pairs only: the description column of one pair and the term column of the next (a
        # reference card's page columns) align row by row too, but are not one row.
        if len(groups[-1]) == 1 and _sides_of_rows(groups[-1][-1], column, boxes):
            groups[-1].append(column)
        else:
            groups.append([column])
    return groups


def _rows_by_top(indices: list[int], boxes: Sequence[Box]) -> list[list[int]]:
    """Rows of boxes side by side whose tops align (within half the shorter one's height), each
    left to right.
    Not gaps between rows: a two-line term or a wrapped description would chain every row into one."""
    def height(i: int) -> float:
        return boxes[i][3] - boxes[i][1]

    def beside(i: int, row: list[int]) -> bool:  # a row's boxes sit side by side, never over each other
        return all(min(boxes[i][2], boxes[j][2]) <= max(boxes[i][0], boxes[j][0]) for j in row)

    rows: list[list[int]] = []
    for i in sorted(indices, key=lambda i: boxes[i][1]):
        if rows and boxes[i][1] - boxes[rows[-1][0]][1] <= 0.5 * min(height(i), height(rows[-1][0])) \
                and beside(i, rows[-1]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [sorted(row, key=lambda i: boxes[i][0]) for row in rows]


def _rows_inside(group: list[int], boxes: Sequence[Box]) -> bool:
    """True when many boxes of the group share their line with another box of it: the group holds
    rows of its own, it is not one side of them."""
    rows = _rows_by_top(group, boxes)
    return sum(len(row) for row in rows if len(row) > 1) > 0.3 * len(group)


def _sides_of_rows(left: list[int], right: list[int], boxes: Sequence[Box]) -> bool:
    if len(left) < 2 or len(right) < 2:
        return False
    if _rows_inside(left, boxes) or _rows_inside(right, boxes):
        return False  # columns of a page (a reference card's), each with rows of its own inside

    def width(group: list[int]) -> float:
        return max(boxes[i][2] for i in group) - min(boxes[i][0] for i in group)

    def starts_a_row(i: int, others: list[int]) -> bool:
        height = boxes[i][3] - boxes[i][1]
        return any(abs(boxes[j][1] - boxes[i][1]) <= 0.5 * min(height, boxes[j][3] - boxes[j][1]) for j in others)

    fewer, more = sorted((left, right), key=len)
    if sum(starts_a_row(i, more) for i in fewer) < ROW_ALIGNED_SHARE * len(fewer):
        return False
    left_edge, left_width = max(boxes[i][2] for i in left), width(left)
    full = sum(boxes[i][2] >= left_edge - FULL_LINE_SLACK * left_width for i in left)
    return full <= 0.5 * len(left) or left_width <= NARROW_SIDE * width(right)


def _split_rows(indices: list[int], boxes: Sequence[Box]) -> list[list[int]]:
    """Groups of indices separated by horizontal gaps that no box crosses, top to bottom."""
    spans = sorted((boxes[i][1], boxes[i][3], i) for i in indices)
    rows: list[list[int]] = [[spans[0][2]]]
    reach = spans[0][1]
    for y1, y2, i in spans[1:]:
        if y1 > reach:
            rows.append([i])
        else:
            rows[-1].append(i)
        reach = max(reach, y2)
    return rows


def _split_columns(indices: list[int], boxes: Sequence[Box]) -> list[list[int]]:
    """Groups of indices separated by vertical gaps that no box crosses, left to right."""
    spans = sorted((boxes[i][0], boxes[i][2], i) for i in indices)
    widths = [x2 - x1 for x1, x2, _ in spans]
    # Small: a tilted scan narrows the gutter between the boxes of two columns to a few pixels.
    min_gap = max(4.0, 0.005 * (max(x2 for _, x2, _ in spans) - spans[0][0]), 0.02 * median(widths))
    columns: list[list[int]] = [[spans[0][2]]]
    reach = spans[0][1]
    for x1, x2, i in spans[1:]:
        if x1 - reach >= min_gap:
            columns.append([i])
        else:
            columns[-1].append(i)
        reach = max(reach, x2)
    return columns


def overlap_area(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


def area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def assign_lines(regions: Sequence[Box], lines: Sequence[TextLine], min_share: float = 0.5):
    """For each line, the index of the region holding most of it (at least min_share of it), else
    of the region holding its centre: a layout box hugs the glyphs, a recognised line's box has a
    margin, so a one-line region may hold less than half of its own line. None if neither."""
    owners: list[int | None] = []
    for line in lines:
        best, best_share = None, min_share
        line_area = max(area(line.box), 1.0)
        x, y = (line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2
        holding_centre = [i for i, r in enumerate(regions) if r[0] <= x <= r[2] and r[1] <= y <= r[3]]
        for index, region in enumerate(regions):
            share = overlap_area(line.box, region) / line_area
            if share >= best_share:
                best, best_share = index, share
        if best is None and holding_centre:
            best = min(holding_centre, key=lambda i: area(regions[i]))
        owners.append(best)
    return owners


def union_box(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def group_rows(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """Lines grouped into visual rows (vertical centre within the row's band), each row left to right."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda l: (l.box[1] + l.box[3]) / 2):
        centre = (line.box[1] + line.box[3]) / 2
        if rows:
            last = rows[-1]
            top = median(l.box[1] for l in last)
            bottom = median(l.box[3] for l in last)
            if top <= centre <= bottom:
                last.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda l: l.box[0]) for row in rows]


def join_lines(lines: Sequence[TextLine]) -> str:
    """Text of a block's lines in reading order: rows top to bottom, joined with spaces.

    A space is not added between two CJK characters, and a word hyphenated across a line break
    keeps its hyphen (we cannot tell a soft hyphen from a real one).
    """
    parts: list[str] = []
    for row in group_rows(lines):
        for line in row:
            text = line.text.strip()
            if not text:
                continue
            if parts and not (_is_cjk(parts[-1][-1]) and _is_cjk(text[0])):
                parts.append(" ")
            parts.append(text)
    return "".join(parts)


LIST_MARKER = re.compile(r"^\s*(?:[•·▪◦●■□➢►\-–—*]\s|\(?(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)]\s)")


def split_list_items(lines: Sequence[TextLine]) -> list[list[TextLine]] | None:
    """A block whose rows start with bullets or numbers, split into one group per item (a
    continuation row joins the item above); None when the block is not a list."""
    rows = group_rows(lines)
    starts = [bool(LIST_MARKER.match(" ".join(l.text for l in row) + " ")) for row in rows]
    if len(rows) < 2 or not starts[0] or sum(starts) < 2:
        return None
    items: list[list[TextLine]] = []
    for row, starts_item in zip(rows, starts):
        if starts_item or not items:
            items.append([])
        items[-1].extend(row)
    return items


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF


def split_text_blocks(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """Lines outside any layout region, grouped into blocks by column and vertical proximity."""
    if not lines:
        return []
    boxes = [l.box for l in lines]
    order = reading_order(boxes)
    heights = [b[3] - b[1] for b in boxes]
    gap_limit = 1.2 * median(heights)
    blocks: list[list[TextLine]] = []
    for index in order:
        line = lines[index]
        if blocks:
            previous = union_box([l.box for l in blocks[-1]])
            horizontal = min(previous[2], line.box[2]) - max(previous[0], line.box[0])
            if 0 <= line.box[1] - previous[3] <= gap_limit and horizontal > 0:
                blocks[-1].append(line)
                continue
        blocks.append([line])
    return blocks


def lines_to_table_html(lines: Sequence[TextLine], escape, rules: Sequence[float] = ()) -> str:
    """An HTML table from the text lines inside a table region: columns by x-gaps; rows by the
    table's horizontal rules where it has them (y positions), else by position. Between two rules,
    a cell's wrapped lines stay in one cell, unless the first column starts several rows there
    (a table ruled only above and below its body: then each visual row is a row)."""
    if not lines:
        return "<table></table>"
    # Column boundaries: gaps in the x-projection of all cells, as for page columns.
    spans = sorted((l.box[0], l.box[2]) for l in lines)
    edges: list[float] = []
    reach = spans[0][1]
    for x1, x2 in spans[1:]:
        if x1 > reach:
            edges.append((reach + x1) / 2)
        reach = max(reach, x2)

    def column(line: TextLine) -> int:
        return sum(1 for e in edges if e < (line.box[0] + line.box[2]) / 2)

    rows = _rows_between_rules(lines, rules, column) if len(rules) >= 2 else group_rows(lines)
    grid: list[list[list[str]]] = []
    for row in rows:
        cells: list[list[str]] = [[] for _ in range(len(edges) + 1)]
        for line in row:
            cells[column(line)].append(line.text.strip())
        grid.append(cells)
    if len(rules) < 2:
        for index in reversed(_continuation_rows(rows, grid)):  # wrapped cell text joins its row
            for col, texts in enumerate(grid.pop(index)):
                grid[index - 1][col].extend(texts)
    return "<table>" + "".join(
        "<tr>" + "".join(f"<td>{escape(' '.join(c))}</td>" for c in cells) + "</tr>" for cells in grid) + "</table>"


def _rows_between_rules(lines: Sequence[TextLine], rules: Sequence[float], column) -> list[list[TextLine]]:
    """Table rows from the bands between consecutive rules (lines above the first or below the
    last rule form bands of their own): a band is one row, its lines top to bottom, left to right,
    unless its first column starts several visual rows: then those are the rows."""
    bands: dict[int, list[TextLine]] = {}
    for line in lines:
        centre = (line.box[1] + line.box[3]) / 2
        bands.setdefault(sum(1 for y in rules if y < centre), []).append(line)
    rows: list[list[TextLine]] = []
    for key in sorted(bands):
        visual = group_rows(bands[key])
        starts = [any(column(l) == 0 for l in row) for row in visual]
        if sum(starts) <= 1:
            rows.append([l for row in visual for l in row])
        else:  # rules only around a body of many rows: each visual row is a row
            rows.extend(list(row) for row in visual)
    return rows


# Rows of a table are set further apart than the lines of one wrapped cell: where some gaps
# between rows exceed the typical one by this factor, the rows after the typical (small) gaps
# whose first cell is empty are a cell's wrapped lines.
ROW_BREAK_GAP = 1.6


def _continuation_rows(rows: list[list[TextLine]], grid: list[list[list[str]]]) -> list[int]:
    if len(rows) < 4:
        return []
    tops = [min(l.box[1] for l in row) for row in rows]
    bottoms = [max(l.box[3] for l in row) for row in rows]
    gaps = [max(0.0, tops[i] - bottoms[i - 1]) for i in range(1, len(rows))]
    typical = median(gaps)
    line_height = median(b - t for t, b in zip(tops, bottoms))
    breaks = [gap > ROW_BREAK_GAP * typical and gap - typical > 0.25 * line_height for gap in gaps]
    if not any(breaks):  # evenly spaced rows: every row is a row
        return []
    return [i for i in range(1, len(rows)) if not breaks[i - 1] and not grid[i][0] and any(grid[i])]
