"""Layered drawing of directed graphs (pipeline DAGs, lineage) as server-side SVG.

Nodes go into columns by their longest path from a source (left to right, as data flows),
and each column is ordered by the mean position of its neighbours in the previous one
(the barycentre heuristic of Sugiyama-style layouts), which keeps most edges uncrossed for
the graphs Shipyard draws: tens of nodes, mostly trees and short chains.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

NODE_W = 190
NODE_H = 46
GAP_X = 70
GAP_Y = 18
PAD = 12


@dataclass(slots=True)
class Box:
    """A placed node: what it shows and where."""

    id: str
    label: str
    sub: str = ""
    kind: str = ""
    href: str | None = None
    x: float = 0.0
    y: float = 0.0
    focus: bool = False


@dataclass(slots=True)
class Line:
    """A placed edge, as an SVG path."""

    source: str
    target: str
    label: str
    path: str = ""
    mid: tuple[float, float] = (0.0, 0.0)


@dataclass(slots=True)
class Drawing:
    """Everything a template needs to draw the graph."""

    boxes: list[Box] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def layout(boxes: list[Box], edges: list[tuple[str, str, str]]) -> Drawing:
    """Place ``boxes`` and route ``edges`` (source, target, label) between them."""
    by_id = {b.id: b for b in boxes}
    edges = [e for e in edges if e[0] in by_id and e[1] in by_id and e[0] != e[1]]
    parents: dict[str, list[str]] = defaultdict(list)
    for source, target, _ in edges:
        parents[target].append(source)
    depth: dict[str, int] = {}

    def level(node: str, path: frozenset[str]) -> int:
        if node in depth:
            return depth[node]
        above = [p for p in parents[node] if p not in path]  # a cycle is cut where it closes
        found = 1 + max((level(p, path | {node}) for p in above), default=-1)
        depth[node] = found
        return found

    for box in boxes:
        level(box.id, frozenset())
    columns: dict[int, list[Box]] = defaultdict(list)
    for box in boxes:
        columns[depth[box.id]].append(box)
    rank: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]
        if col > 0:
            members.sort(
                key=lambda b: (
                    sum(rank.get(p, 0.0) for p in parents[b.id]) / max(len(parents[b.id]), 1),
                    b.id,
                )
            )
        for i, box in enumerate(members):
            rank[box.id] = float(i)
    tallest = max((len(m) for m in columns.values()), default=0)
    height = tallest * (NODE_H + GAP_Y) - GAP_Y + 2 * PAD
    for col, members in columns.items():
        offset = (height - (len(members) * (NODE_H + GAP_Y) - GAP_Y)) / 2
        for i, box in enumerate(members):
            box.x = PAD + col * (NODE_W + GAP_X)
            box.y = offset + i * (NODE_H + GAP_Y)
    lines = []
    for source, target, label in edges:
        a, b = by_id[source], by_id[target]
        x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
        x2, y2 = b.x, b.y + NODE_H / 2
        if x2 <= x1:  # a back edge (a cut cycle): leave from the right, come in from the left
            x1, x2 = a.x + NODE_W / 2, b.x + NODE_W / 2
        bend = max(abs(x2 - x1) / 2, 30)
        path = (
            f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} "
            f"{x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        )
        lines.append(Line(source, target, label, path, ((x1 + x2) / 2, (y1 + y2) / 2 - 4)))
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    return Drawing(boxes, lines, max(width, NODE_W + 2 * PAD), max(height, NODE_H + 2 * PAD))
