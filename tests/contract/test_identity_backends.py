"""Users and roles answer alike on SQLite, PostgreSQL and through a token-auth server: a
role changed or a user disabled is audited, and a disabled user's token stops working."""

from __future__ import annotations

import pytest

from shipyard.bootstrap import Backend
from shipyard.core.errors import AuthenticationError, NotFoundError


def test_a_role_changes_and_a_disabled_user_is_locked_out(backend: Backend) -> None:
    identity = backend.governance.identity
    identity.create_user("dana", "member")
    _, secret = identity.create_token("dana", "laptop")
    assert identity.get_user("dana").role.value == "member"
    promoted = identity.set_role("dana", "approver")
    assert promoted.role.value == "approver" and not promoted.disabled
    assert identity.authenticate(secret).name == "dana"
    locked = identity.set_role("dana", "approver", disabled=True)
    assert locked.disabled
    with pytest.raises(AuthenticationError, match="disabled"):
        identity.authenticate(secret)
    events = backend.governance.audit.events(obj="user:dana")
    changes = [e.payload for e in events if e.action == "user.role_changed"]
    assert changes == [
        {"from": "member", "to": "approver", "disabled": False},
        {"from": "approver", "to": "approver", "disabled": True},
    ]
    with pytest.raises(NotFoundError, match="'nobody' does not exist"):
        identity.get_user("nobody")
    with pytest.raises(NotFoundError):
        identity.set_role("nobody", "viewer")
