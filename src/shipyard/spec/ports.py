"""What the spec needs from storage: objects only a spec declares, and what apply wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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
