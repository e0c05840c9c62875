"""The lineage of a model version: what made it (upstream) and what it led to (downstream).

Upstream: the training run, its code version, the training data kept with it, and, when it
came from a pipeline, the step runs, their inputs and the pipeline run (from the recorded
lineage edges). Downstream: gate reports, promotion requests, aliases and deployments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shipyard.gates.ports import Gates
from shipyard.gates.service import TRAINING_DATA
from shipyard.governance.ports import Approvals
from shipyard.pipelines.lineage import LineageNode, lineage_tree
from shipyard.pipelines.ports import PipelineStore
from shipyard.registry.card import DATA_SOURCE_TAG
from shipyard.registry.models import ModelVersion
from shipyard.registry.ports import ModelRegistry


def model_node(mv: ModelVersion) -> str:
    """The lineage node of a version."""
    return f"model:{mv.name}/{mv.version}"


@dataclass
class ModelLineage:
    """Both trees and the same as one graph."""

    node: str
    upstream: LineageNode
    downstream: LineageNode
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def graph(self) -> dict[str, Any]:
        """Nodes and edges (source -> target, relation), for tools and the UI."""
        nodes: dict[str, dict[str, Any]] = {self.node: self.details.get(self.node, {})}
        edges: list[dict[str, str | None]] = []

        def walk(tree: LineageNode, upstream: bool) -> None:
            for child in tree.children:
                nodes.setdefault(child.node, self.details.get(child.node, {}))
                source, target = (child.node, tree.node) if upstream else (tree.node, child.node)
                edges.append({"source": source, "target": target, "relation": child.relation})
                walk(child, upstream)

        walk(self.upstream, True)
        walk(self.downstream, False)
        return {
            "root": self.node,
            "nodes": [{"id": k, **v} for k, v in nodes.items()],
            "edges": edges,
        }


def _searched_on(
    source: str, pipelines: PipelineStore | None, details: dict[str, dict[str, Any]]
) -> LineageNode | None:
    """The stored data an AutoML search ran on, and what made it (a pipeline's step)."""
    digest = source.rpartition("sha256:")[2]
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    node = f"artifact:{digest}"
    tree = lineage_tree(pipelines, node, "upstream") if pipelines is not None else LineageNode(node)
    tree.relation = "searched_on"
    details[node] = {"kind": "dataset", "source": source.rpartition(" sha256:")[0] or source}
    return tree


def model_lineage(
    registry: ModelRegistry,
    gates: Gates,
    approvals: Approvals,
    pipelines: PipelineStore | None,
    uri: str,
) -> ModelLineage:
    """Everything recorded about where a version came from and where it went."""
    mv = registry.resolve(uri)
    root = model_node(mv)
    details: dict[str, dict[str, Any]] = {
        root: {
            "kind": "model_version",
            "state": mv.state.value,
            "created_by": mv.created_by,
            "aliases": mv.aliases,
            "flavors": mv.flavors,
        }
    }
    run = registry.tracking.get_run(mv.run_id)
    run_node = f"run:{run.id}"
    details[run_node] = {
        "kind": "run",
        "name": run.name,
        "status": run.status.value,
        "user": run.tags.get("shipyard.user"),
    }
    run_tree = (
        lineage_tree(pipelines, run_node, "upstream")
        if pipelines is not None
        else LineageNode(run_node)
    )
    run_tree.relation = "trained_in"
    if run.source is not None and run.source.git_commit:
        code = f"code:git:{run.source.git_commit}"
        run_tree.children.append(LineageNode(code, "source_code"))
        details[code] = {"kind": "code", "entry_point": run.source.entry_point}
    for artifact in registry.tracking.list_artifacts(run.id):
        if artifact.name == TRAINING_DATA:
            data = f"artifact:{artifact.digest}"
            run_tree.children.append(LineageNode(data, "training_data"))
            details[data] = {"kind": "dataset", "name": artifact.name, "size": artifact.size}
    searched = _searched_on(run.tags.get(DATA_SOURCE_TAG, ""), pipelines, details)
    if searched is not None:
        run_tree.children.append(searched)
    upstream = LineageNode(root, None, [run_tree])

    downstream = (
        lineage_tree(pipelines, root, "downstream") if pipelines is not None else LineageNode(root)
    )
    for report in gates.reports(mv.name, mv.version):
        node = f"gate:{report.id}"
        downstream.children.append(LineageNode(node, "gated_by"))
        details[node] = {
            "kind": "gate_report",
            "passed": report.passed,
            "rows": report.rows,
            "by": report.created_by,
        }
    for request in approvals.requests(mv.name, mv.version):
        node = f"promotion:{request.id}"
        downstream.children.append(LineageNode(node, f"promotion_{request.status}"))
        details[node] = {
            "kind": "promotion",
            "status": request.status,
            "approvers": [a.approver for a in request.approvals],
        }
    for alias in mv.aliases:
        node = f"alias:{mv.name}@{alias}"
        downstream.children.append(LineageNode(node, "holds_alias"))
        details[node] = {"kind": "alias"}
    return ModelLineage(root, upstream, downstream, details)
