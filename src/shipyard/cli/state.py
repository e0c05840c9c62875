"""Per-invocation state: settings read once, and the backend built lazily from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from shipyard.bootstrap import Backend, build_backend
from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings


@dataclass
class State:
    """What every command of one invocation shares."""

    uri_override: str | None = None
    _settings: Settings | None = None
    _backend: Backend | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """Settings from flags, the environment and pyproject.toml."""
        if self._settings is None:
            self._settings = Settings(uri=self.uri_override) if self.uri_override else Settings()
        return self._settings

    @property
    def backend(self) -> Backend:
        """The backend for the configured store (built on first use)."""
        if self._backend is None:
            self._backend = build_backend(self.settings)
        return self._backend


def state(ctx: typer.Context) -> State:
    """The State of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        raise InvalidInputError("run this command through the shipyard CLI")
    return obj
