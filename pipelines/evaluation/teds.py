"""TEDS, tree-edit-distance similarity of HTML tables (Zhong et al., 2020).

1 - TED(prediction, truth) / max(nodes), on the trees table > tr > td, where renaming a cell costs
the normalised edit distance of the two cells' texts (1 if their spans differ), and inserting or
deleting a node costs 1. With structure_only the texts do not count (TEDS-S). th and td are both
cells.
"""
from __future__ import annotations

from apted import APTED, Config
from bs4 import BeautifulSoup
from rapidfuzz.distance import Levenshtein


class Node:
    def __init__(self, tag: str, text: str = "", colspan: int = 1, rowspan: int = 1):
        self.tag, self.text, self.colspan, self.rowspan = tag, text, colspan, rowspan
        self.children: list[Node] = []

    def size(self) -> int:
        return 1 + sum(child.size() for child in self.children)


class _CellCost(Config):
    def __init__(self, with_text: bool):
        self.with_text = with_text

    def rename(self, a: Node, b: Node) -> float:
        if a.tag != b.tag or (a.colspan, a.rowspan) != (b.colspan, b.rowspan):
            return 1.0
        if a.tag == "td" and self.with_text:
            return Levenshtein.normalized_distance(a.text, b.text)
        return 0.0

    def children(self, node: Node) -> list[Node]:
        return node.children


def _span(cell, name: str) -> int:
    try:
        return max(1, int(cell.get(name, 1)))
    except (TypeError, ValueError):
        return 1


def table_trees(html: str) -> list[Node]:
    """Each top-level <table> in the markup as a tree."""
    trees = []
    for table in BeautifulSoup(html, "html.parser").find_all("table"):
        if table.find_parent("table"):
            continue
        root = Node("table")
        for tr in table.find_all("tr"):
            row = Node("tr")
            for cell in tr.find_all(["td", "th"]):
                row.children.append(Node("td", " ".join(cell.get_text(" ").split()),
                                         _span(cell, "colspan"), _span(cell, "rowspan")))
            root.children.append(row)
        trees.append(root)
    return trees


def teds(prediction: Node, truth: Node, structure_only: bool = False) -> float:
    distance = APTED(prediction, truth, _CellCost(not structure_only)).compute_edit_distance()
    return 1.0 - distance / max(prediction.size(), truth.size())


def match_tables(predicted: list[Node], truths: list[Node]) -> list[dict]:
    """Each truth table with the predicted table that scores best against it (greedy, each
    prediction used once); a truth table left without one scores 0."""
    pairs = sorted(((teds(p, t), i, j) for i, t in enumerate(truths) for j, p in enumerate(predicted)), reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return [{"table": i + 1, "rows": len(truth.children),
             "teds": 0.0 if (j := matched.get(i)) is None else teds(predicted[j], truth),
             "teds_s": 0.0 if j is None else teds(predicted[j], truth, structure_only=True)}
            for i, truth in enumerate(truths)]
