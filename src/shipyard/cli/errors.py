"""The one mapping from errors to exit codes: 0 ok, 1 a check failed, 2 usage or input
error, 3 internal or infrastructure error (store unreachable, unexpected failure)."""

from __future__ import annotations

from shipyard.core import errors as err

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def exit_code(exc: BaseException) -> int:
    """The exit code for an error that ended a command."""
    if isinstance(exc, err.StoreError):
        return EXIT_INTERNAL
    if isinstance(
        exc,
        err.InvalidInputError
        | err.NotFoundError
        | err.ConflictError
        | err.PermissionDeniedError
        | err.StateTransitionError,
    ):
        return EXIT_USAGE
    if isinstance(exc, err.ShipyardError):
        return EXIT_CHECK_FAILED
    return EXIT_INTERNAL
