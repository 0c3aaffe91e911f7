"""Tables in a page's Markdown (pipe tables and HTML tables) as grids with their headings, the
way olmOCR-bench's table tests read them."""
from __future__ import annotations

from dataclasses import dataclass, field

from bs4 import BeautifulSoup
from rapidfuzz import fuzz

from .normalise import normalise


@dataclass
class Table:
    grid: list[list[str]]
    header_rows: set[int] = field(default_factory=set)
    header_cols: set[int] = field(default_factory=set)
    col_headers: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # column -> (row, text)
    row_headers: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # row -> (column, text)

    def has(self, row: int, column: int) -> bool:
        return 0 <= row < len(self.grid) and 0 <= column < len(self.grid[0])

    def text(self, row: int, column: int) -> str:
        return self.grid[row][column]

    def cells_matching(self, wanted: str, threshold: float) -> list[tuple[int, int]]:
        return [(r, c) for r, row in enumerate(self.grid) for c, text in enumerate(row)
                if fuzz.ratio(wanted, normalise(text)) / 100.0 >= threshold]

    def top_headings(self, row: int, column: int) -> tuple[list[str], list[str], list[str]]:
        """Candidates for the heading above a cell, by precedence: declared column headings,
        cells of header rows above it, any non-empty cell above it."""
        declared = [text for _, text in self.col_headers.get(column, [])]
        in_header_rows = [self.grid[r][column] for r in sorted(self.header_rows)
                          if r < row and self.grid[r][column].strip()]
        above = [self.grid[r][column] for r in range(row) if self.grid[r][column].strip()]
        return declared, in_header_rows, above

    def left_headings(self, row: int, column: int) -> tuple[list[str], list[str], list[str]]:
        declared = [text for _, text in self.row_headers.get(row, [])]
        in_header_cols = [self.grid[row][c] for c in sorted(self.header_cols)
                          if c < column and self.grid[row][c].strip()]
        before = [self.grid[row][c] for c in range(column) if self.grid[row][c].strip()]
        return declared, in_header_cols, before


def _padded(rows: list[list[str]]) -> list[list[str]]:
    width = max(len(row) for row in rows)
    return [row + [""] * (width - len(row)) for row in rows]


def markdown_tables(markdown: str) -> list[Table]:
    """Pipe tables: runs of two or more lines holding "|"; the first row and column are headings."""
    tables, block = [], []
    for line in markdown.strip().split("\n") + [""]:
        if "|" in line:
            block.append(line)
            continue
        if len(block) >= 2 and (rows := _pipe_rows(block)):
            grid = _padded(rows)
            tables.append(Table(
                grid, header_rows={0}, header_cols={0},
                col_headers={c: [(0, grid[0][c])] for c in range(len(grid[0]))},
                row_headers={r: [(0, grid[r][0])] for r in range(1, len(grid))}))
        block = []
    return tables


def _pipe_rows(lines: list[str]) -> list[list[str]]:
    def is_rule(text: str) -> bool:
        content = text.replace("|", "").strip()
        return bool(content) and all(c in "- :" for c in content)

    rule = next((i for i, line in enumerate(lines) if is_rule(line)), None)
    rows = []
    for index, line in enumerate(lines):
        if index == rule or (line.strip() and all(c in "- :|" for c in line)):
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if cells and cells[0] == "":
            cells = cells[1:]
        if cells and cells[-1] == "":
            cells = cells[:-1]
        if cells:
            rows.append(cells)
    return rows


def html_tables(markup: str) -> list[Table]:
    """HTML tables on a grid that honours rowspan and colspan; th cells and thead rows are headings."""
    return [table for element in BeautifulSoup(markup, "html.parser").find_all("table")
            if (table := _html_table(element)) is not None]


def _span(cell, name: str) -> int:
    try:
        return max(1, int(cell.get(name, 1)))
    except (TypeError, ValueError):
        return 1


def _html_table(element) -> Table | None:
    rows = element.find_all("tr")
    table = Table([])
    head = element.find("thead")
    if head:
        table.header_rows.update(rows.index(tr) for tr in head.find_all("tr") if tr in rows)
    spanned: dict[tuple[int, int], str] = {}  # grid positions filled by a span from above or the left
    spanning_cols: dict[str, set[int]] = {}  # a heading spanning columns -> those columns
    spanning_rows: dict[str, set[int]] = {}
    for r, row in enumerate(rows):
        texts: list[str] = []
        c = 0
        if row.find("th"):
            table.header_rows.add(r)
        for cell in row.find_all(["th", "td"]):
            while (r, c) in spanned:
                texts.append(spanned[(r, c)])
                c += 1
            for br in cell.find_all("br"):
                br.replace_with("\n")
            text = cell.get_text().strip()
            rowspan, colspan = _span(cell, "rowspan"), _span(cell, "colspan")
            texts.append(text)
            for i in range(rowspan):
                for j in range(colspan):
                    if (i, j) != (0, 0):  # a rowspan repeats the text below; other spans stay empty
                        spanned[(r + i, c + j)] = text if j == 0 and i > 0 else ""
            if cell.name == "th":
                table.header_cols.update(range(c, c + colspan))
                table.header_rows.update(r + i for i in range(1, rowspan) if r + i < len(rows))
                for j in range(c, c + colspan):
                    table.col_headers.setdefault(j, []).append((r, text))
                    if text and colspan > 1:
                        spanning_cols.setdefault(text, set()).add(j)
                if text and rowspan > 1:
                    spanning_rows.setdefault(text, set()).update(range(r, r + rowspan))
            if cell.name == "td" and rowspan > 1 and c in table.header_cols:
                for i in range(1, rowspan):
                    if r + i < len(rows):
                        table.row_headers.setdefault(r + i, []).append((c, text))
            c += colspan
        table.grid.append(texts)
    if not table.grid or not any(table.grid):
        return None
    # A heading spanning columns heads every data cell from its first column to the row's end.
    for text, columns in spanning_cols.items():
        for column in columns:
            heading_row = min(r for r, _ in table.col_headers.get(column, [(0, "")]))
            for r, row in enumerate(table.grid):
                if r in table.header_rows:
                    continue
                for j in range(column, len(row)):
                    headings = table.col_headers.setdefault(j, [])
                    if not any(t == text for _, t in headings):
                        headings.append((heading_row, text))
    for text, spanned_rows in spanning_rows.items():
        for r in spanned_rows:
            if r < len(table.grid):
                headings = table.row_headers.setdefault(r, [])
                if not any(t == text for _, t in headings):
                    headings.append((min(table.header_cols) if table.header_cols else 0, text))
    for c in table.header_cols:
        for r, row in enumerate(table.grid):
            if c < len(row) and row[c].strip():
                headings = table.row_headers.setdefault(r, [])
                if not any(t == row[c] for _, t in headings):
                    headings.append((c, row[c]))
    table.grid = _padded(table.grid)
    return table
