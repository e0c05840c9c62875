"""What the spec needs from storage: objects only a spec declares, and what apply wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shipyard.spec.diff import Key, Plan
    from shipyard.spec.documents import Document
    from shipyard.spec.service import DriftItem


@dataclass(frozen=True)
class StoredObject:
    """A declared object (or the last apply's snapshot of one), and who last wrote it."""

    kind: str
    name: str
    body: dict[str, Any]
    at: int
    by: str


class SpecObjectStore(Protocol):
    """Declared objects, apply snapshots, and the lock that makes applies take turns."""

    def list_objects(self) -> list[StoredObject]:
        """Every declared object (gate policies, deployments, monitors, rules, notifiers)."""
        ...

    def put_object(self, kind: str, name: str, body: dict[str, Any], at: int, by: str) -> None:
        """Insert or replace a declared object."""
        ...

    def delete_object(self, kind: str, name: str) -> None:
        """Remove a declared object."""
        ...

    def applied(self) -> list[StoredObject]:
        """What the last apply wrote, for every object it manages."""
        ...

    def record_applied(self, kind: str, name: str, body: dict[str, Any], at: int, by: str) -> None:
        """Keep the body an apply wrote."""
        ...

    def forget_applied(self, kind: str, name: str) -> None:
        """An apply removed the object: it is no longer managed."""
        ...

    def lock(self) -> None:
        """Take the apply lock until the unit of work ends (applies run one at a time)."""
        ...


class SpecOperations(Protocol):
    """What surfaces ask of the project spec, in this process or through a server."""

    def live(self) -> dict[Key, dict[str, Any]]:
        """Every live object, in the form a spec document has."""
        ...

    def plan(self, docs: list[Document], *, prune: bool = False) -> Plan:
        """What apply would change."""
        ...

    def apply(self, docs: list[Document], *, prune: bool = False) -> Plan:
        """Make every change in one transaction, or none."""
        ...

    def export(self) -> list[Document]:
        """The live state as documents."""
        ...

    def drift(self) -> list[DriftItem]:
        """What changed outside the spec since the last apply, by whom and when."""
        ...

    def watch_drift(self, notify: list[str]) -> dict[str, Any]:
        """Judge drift as a window of the ``spec-drift`` monitor (its alert notifies)."""
        ...

    def edit(self, kind: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a declared object by hand (audited; drift until applied)."""
        ...
