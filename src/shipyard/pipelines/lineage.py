"""Walk lineage edges upstream (what something was made from) and downstream (what used it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shipyard.pipelines.ports import PipelineStore

Direction = Literal["upstream", "downstream"]


@dataclass
class LineageNode:
    """A node of a lineage tree and its neighbours in one direction."""

    node: str
    relation: str | None = None
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "node": self.node,
            "relation": self.relation,
            "children": [c.to_dict() for c in self.children],
        }


def lineage_tree(
    store: PipelineStore, start: str, direction: Direction, max_depth: int = 12
) -> LineageNode:
    """The tree of nodes reachable from ``start`` in one direction (cycles cut)."""
    root = LineageNode(start)
    frontier = [(root, 0)]
    seen = {start}
    while frontier:
        level_nodes = [n.node for n, _ in frontier]
        edges = store.edges_touching(level_nodes)
        next_frontier = []
        for tree, depth in frontier:
            if depth >= max_depth:
                continue
            for source, target, relation in edges:
                if direction == "upstream" and target == tree.node:
                    other = source
                elif direction == "downstream" and source == tree.node:
                    other = target
                else:
                    continue
                if other in seen:
                    continue
                seen.add(other)
                child = LineageNode(other, relation)
                tree.children.append(child)
                next_frontier.append((child, depth + 1))
        frontier = next_frontier
    return root
