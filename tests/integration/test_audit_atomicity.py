"""A change and its audit event commit together: neither is ever kept without the other.

Before, services wrote the change, then the event in a second transaction: a crash in
between (simulated here by an audit append that fails, and for real by ``kill -9``) left a
change nobody could account for.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.bootstrap import Backend, local_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import NotFoundError
from shipyard.core.roles import Role
from shipyard.core.settings import Settings
from tests.conftest import kill_9_after, store_env


class CrashError(RuntimeError):
    """What the process dies of between the change and its event."""


def _user_exists(backend: Backend, name: str) -> bool:
    try:
        backend.governance.identity.store.get_user(name)
    except NotFoundError:
        return False
    return True


def crash_on_append(store: Any, monkeypatch: pytest.MonkeyPatch, at: int = 1) -> None:
    """Make the append that writes the ``at``-th audit event from now on fail, as a process
    dying there would (a unit's events are appended together, just before it commits)."""
    real = store.append
    calls = {"n": 0}

    def append(entries: list[Any]) -> Any:
        before = calls["n"]
        calls["n"] += len(entries)
        if before < at <= calls["n"]:
            raise CrashError("the process died before the audit event was written")
        return real(entries)

    monkeypatch.setattr(store, "append", append)


CASES: dict[str, tuple[Callable[[Backend], object], Callable[[Backend], bool]]] = {
    "user created": (
        lambda b: b.governance.identity.create_user("mallory", "admin"),
        lambda b: _user_exists(b, "mallory"),
    ),
    "model governance set": (
        lambda b: b.registry.set_governance("fraud", risk_tier="low"),
        lambda b: b.registry.get_model("fraud").risk_tier == "low",
    ),
    "model description changed": (
        lambda b: b.registry.update_model("fraud", "rewritten"),
        lambda b: b.registry.get_model("fraud").description == "rewritten",
    ),
    "run created": (
        lambda b: b.tracking.create_run("atomic", name="ghost"),
        lambda b: any(r.name == "ghost" for r in b.tracking.search_runs(["atomic"])),
    ),
    "run deleted": (
        lambda b: b.tracking.delete_run(b.tracking.search_runs(["atomic"])[0].id),
        lambda b: not b.tracking.search_runs(["atomic"]),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crash_before_the_event_leaves_no_change(
    store_backend: Backend, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    backend = store_backend
    change, happened = CASES[case]
    with acting_as("root", Role.ADMIN):
        backend.registry.create_model("fraud", description="original")
        backend.tracking.create_run("atomic", name="kept")
        before = len(backend.governance.audit.events())
        crash_on_append(backend.governance.audit.store, monkeypatch)
        with pytest.raises(CrashError):
            change(backend)
        monkeypatch.undo()
        assert not happened(backend), f"{case}: the change stayed without its audit event"
        assert len(backend.governance.audit.events()) == before
        assert backend.governance.audit.verify().ok


WRITER = textwrap.dedent(
    """
    import sys
    from shipyard.bootstrap import local_backend
    from shipyard.core.actor import acting_as
    from shipyard.core.roles import Role
    from shipyard.core.settings import Settings

    backend = local_backend(Settings())
    print("users", flush=True)
    with acting_as("root", Role.ADMIN):
        for i in range(100_000):
            backend.governance.identity.create_user(f"user{i}", "viewer")
            print(i, flush=True)  # acknowledged: the call returned
    """
)


def test_kill_9_during_audited_writes_loses_nothing_acknowledged(
    store_settings: Settings, tmp_path: Path
) -> None:
    settings = store_settings
    _, acknowledged = kill_9_after(WRITER, [], store_env(settings), 40)

    backend = local_backend(settings)
    try:
        users = {u.name for u in backend.governance.identity.list_users()}
        events = [e.object for e in backend.governance.audit.events(action="user.created")]
        assert {f"user{i}" for i in range(acknowledged + 1)} <= users, (
            "an acknowledged write was lost"
        )
        assert sorted(events) == sorted(f"user:{u}" for u in users), (
            "a user without its audit event, or an event without its user"
        )
        check = backend.consistency.run()  # the database's own checks and the audit chain
        assert check.ok, (check.database, check.audit_reason)
    finally:
        backend.close()
