"""Who is acting: one explicit context variable, set by the surface that knows.

The CLI and SDK set it from ``SHIPYARD_USER`` or the OS user; the server sets it per
request from the caller's token. Services read it to stamp audit events and records, so
no signature has to carry the actor through every layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ACTOR: ContextVar[str | None] = ContextVar("shipyard_actor", default=None)
_FALLBACK = ["local"]


def current_actor() -> str:
    """The actor of the current request or process."""
    return _ACTOR.get() or _FALLBACK[0]


def set_process_actor(name: str) -> None:
    """The actor for everything in this process that sets no other (CLI, SDK)."""
    _FALLBACK[0] = name


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Run a block as ``name`` (a server request, a test)."""
    token = _ACTOR.set(name)
    try:
        yield
    finally:
        _ACTOR.reset(token)
