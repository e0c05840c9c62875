"""MLflow's error bodies: ``{"error_code": ..., "message": ...}`` with MLflow's statuses.

MLflow's client branches on the code (``RESOURCE_DOES_NOT_EXIST`` makes ``set_experiment``
create one, ``ENDPOINT_NOT_FOUND`` makes it try an older route) and retries 5xx answers for
minutes, so every refusal of bad input must be a 4xx with the right code.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from shipyard.core import errors as err

#: Path prefixes served in MLflow's dialect.
PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow")

_CODES: list[tuple[type[err.ShipyardError], str, int]] = [
    (err.AuthenticationError, "UNAUTHENTICATED", 401),
    (err.RateLimitedError, "REQUEST_LIMIT_EXCEEDED", 429),
    (err.PermissionDeniedError, "PERMISSION_DENIED", 403),
    (err.NotFoundError, "RESOURCE_DOES_NOT_EXIST", 404),
    (err.ConflictError, "RESOURCE_ALREADY_EXISTS", 400),
    (err.StateTransitionError, "INVALID_STATE", 400),
    (err.InvalidInputError, "INVALID_PARAMETER_VALUE", 400),
    (err.StoreError, "TEMPORARILY_UNAVAILABLE", 503),
]


def is_mlflow(request: Request) -> bool:
    """Tell whether a request came in on one of MLflow's routes."""
    return request.url.path.startswith(PREFIXES)


def body(code: str, message: str, status: int) -> JSONResponse:
    """An MLflow error answer."""
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def of(exc: err.ShipyardError) -> JSONResponse:
    """The MLflow answer for a Shipyard error."""
    for cls, code, status in _CODES:
        if isinstance(exc, cls):
            response = body(code, exc.message, status)
            if "retry_after" in exc.context:
                response.headers["Retry-After"] = str(exc.context["retry_after"])
            return response
    return body("INTERNAL_ERROR", exc.message, 500)


def of_http(status: int, detail: str) -> JSONResponse:
    """The MLflow answer for a routing or framework error (unknown route, bad method)."""
    if status in (404, 405):
        return body("ENDPOINT_NOT_FOUND", f"no MLflow endpoint here: {detail}", 404)
    if status == 413:
        return body("INVALID_PARAMETER_VALUE", detail, 413)
    return body("INVALID_PARAMETER_VALUE" if status < 500 else "INTERNAL_ERROR", detail, status)
