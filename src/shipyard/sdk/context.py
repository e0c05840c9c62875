"""The SDK's one current context: the active settings, backend and run stack.

Held in a single ``ContextVar`` (STYLE.md allows exactly this), created on the first SDK
call, so ``import shipyard`` reads no environment and opens nothing.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

from shipyard.bootstrap import Backend, build_backend
from shipyard.core.errors import ShipyardError
from shipyard.core.settings import Settings
from shipyard.sdk.active_run import ActiveRun

logger = logging.getLogger(__name__)


@dataclass
class Context:
    """Settings, the backend built from them, and the stack of active runs."""

    settings: Settings
    backend: Backend | None = None
    runs: list[ActiveRun] = field(default_factory=list)
    materializers: list[Any] = field(default_factory=list)
    # MLflow's set_experiment: where start_run puts runs when it is not told.
    experiment: str | None = None
    # MLflow's last_active_run: the id of the run that ended last.
    last_run_id: str | None = None

    def get_backend(self) -> Backend:
        """Build the backend on first use."""
        if self.backend is None:
            self.backend = build_backend(self.settings)
        return self.backend

    def close(self) -> None:
        """End every active run (innermost first) and release the backend."""
        for run in reversed(list(self.runs)):
            try:
                run.end()
            except ShipyardError as exc:
                logger.error("could not end run %s at exit: %s", run.id, exc)
        self.runs.clear()
        if self.backend is not None:
            self.backend.close()
            self.backend = None


_current: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "shipyard_context", default=None
)


def current() -> Context:
    """Return the current context, reading settings from the environment on first use."""
    ctx = _current.get()
    if ctx is None:
        ctx = Context(settings=Settings())
        _current.set(ctx)
        atexit.register(ctx.close)
    return ctx


def push(ctx: Context) -> contextvars.Token[Context | None]:
    """Make ``ctx`` current in this context only (a pipeline step's own run)."""
    return _current.set(ctx)


def pop(token: contextvars.Token[Context | None]) -> None:
    """Undo a ``push``."""
    _current.reset(token)


def replace(settings: Settings) -> Context:
    """Switch to new settings: active runs end and the old backend closes."""
    old = _current.get()
    if old is not None:
        old.close()
        atexit.unregister(old.close)
    ctx = Context(settings=settings)
    _current.set(ctx)
    atexit.register(ctx.close)
    return ctx
