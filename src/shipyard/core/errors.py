"""The one exception tree of Shipyard.

Every error raised on purpose derives from :class:`ShipyardError`. The CLI maps these to
exit codes and the server to HTTP statuses, each in one place (``cli/errors.py`` and
``server/errors.py``). Context travels as attributes so callers never parse messages.

```
ShipyardError
├── InvalidInputError (ValueError)   bad name, value, filter, path ...
├── NotFoundError (LookupError)      unknown id, name or artifact
├── ConflictError                    the object exists, or was changed meanwhile
├── PermissionDeniedError            caller lacks the role or the bind is unsafe
│   └── RateLimitedError             too many failed attempts; retry later
├── StateTransitionError             the move is not allowed from the current state
├── PipelineError                    a pipeline could not run
└── StoreError                       the backing store failed (database, disk, server)
```
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context
        for key, value in context.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


class InvalidInputError(ShipyardError, ValueError):
    """Input broke a documented rule; the message names the rule and the value received."""


class NotFoundError(ShipyardError, LookupError):
    """The named object does not exist."""


class ConflictError(ShipyardError):
    """The object already exists, or changed in a way that forbids this write."""


class PermissionDeniedError(ShipyardError):
    """The caller may not do this."""


class AuthenticationError(PermissionDeniedError):
    """The caller could not be identified: no, a forged, a revoked or an expired token."""


class RateLimitedError(PermissionDeniedError):
    """Too many failed attempts from one client; ``retry_after`` seconds until it may retry."""


class StateTransitionError(ShipyardError):
    """The requested state change is not allowed from the current state."""


class PipelineError(ShipyardError):
    """A pipeline or one of its steps could not run."""


class StoreError(ShipyardError):
    """The backing store (database, blob store, remote server) failed."""
