"""The project spec through a Shipyard server: plan and apply run there, in one
transaction against its store; documents are checked here first and again there."""

from __future__ import annotations

from typing import Any

from shipyard.remote.client import RestClient, json_body, seg
from shipyard.spec.diff import Key, Plan
from shipyard.spec.documents import Document
from shipyard.spec.service import DriftItem
from shipyard.wire.schemas import (
    DriftWatch,
    SpecDocuments,
    SpecDocumentWire,
    SpecEdit,
    SpecRequest,
)


class RestSpec:
    """SpecOperations over HTTP."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def _send(self, action: str, docs: list[Document], prune: bool) -> Plan:
        body = SpecRequest(
            documents=[SpecDocumentWire(kind=d.kind, name=d.name, body=d.body) for d in docs],
            prune=prune,
        )
        data = self.client.json(
            "POST", f"/api/v1/spec/{action}", idempotent=action == "plan", **json_body(body)
        )
        return Plan.from_dict(data)

    def plan(self, docs: list[Document], *, prune: bool = False) -> Plan:
        """POST /api/v1/spec/plan."""
        return self._send("plan", docs, prune)

    def apply(self, docs: list[Document], *, prune: bool = False) -> Plan:
        """POST /api/v1/spec/apply."""
        return self._send("apply", docs, prune)

    def export(self) -> list[Document]:
        """GET /api/v1/spec/export."""
        found = SpecDocuments.model_validate(self.client.json("GET", "/api/v1/spec/export"))
        return [Document(kind=d.kind, name=d.name, body=d.body) for d in found.documents]

    def live(self) -> dict[Key, dict[str, Any]]:
        """The live state (what export gives), by kind and name."""
        return {d.key: d.body for d in self.export()}

    def drift(self) -> list[DriftItem]:
        """GET /api/v1/spec/drift."""
        data = self.client.json("GET", "/api/v1/spec/drift")
        return [DriftItem.from_dict(d) for d in data["drift"]]

    def watch_drift(self, notify: list[str]) -> dict[str, Any]:
        """POST /api/v1/spec/drift/watch: judged and alerted on the server."""
        data: dict[str, Any] = self.client.json(
            "POST",
            "/api/v1/spec/drift/watch",
            idempotent=False,
            **json_body(DriftWatch(notify=notify)),
        )
        return data

    def edit(self, kind: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH /api/v1/spec/objects/{kind}/{name}."""
        data = self.client.json(
            "PATCH",
            f"/api/v1/spec/objects/{seg(kind)}/{seg(name)}",
            idempotent=False,
            **json_body(SpecEdit(changes=changes)),
        )
        body: dict[str, Any] = data["body"]
        return body
