"""The one mapping from Shipyard errors to HTTP statuses and JSON error bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.core import errors as err
from shipyard.server.mlflow_api import errors as mlflow_errors
from shipyard.ui import pages
from shipyard.wire.schemas import ErrorBody

logger = logging.getLogger(__name__)

STATUS = {
    err.InvalidInputError: 400,
    err.NotFoundError: 404,
    err.ConflictError: 409,
    err.AuthenticationError: 401,
    err.RateLimitedError: 429,
    err.PermissionDeniedError: 403,
    err.StateTransitionError: 409,
    err.PipelineError: 422,
    err.StoreError: 503,
}


def status_of(exc: err.ShipyardError) -> int:
    """The HTTP status for an error: the nearest class in STATUS, else 500."""
    for cls in type(exc).__mro__:
        status = STATUS.get(cls) if issubclass(cls, err.ShipyardError) else None
        if status is not None:
            return int(status)
    return 500


def _json_safe(context: dict[str, object]) -> dict[str, object]:
    return {
        k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
        for k, v in context.items()
    }


def error_response(
    status: int, message: str, kind: str, context: dict[str, object] | None = None
) -> JSONResponse:
    """A JSON error body with the given status."""
    body = ErrorBody(error=message, type=kind, context=_json_safe(context or {}))
    return JSONResponse(body.model_dump(), status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers so no request ends in an HTML page or a bare 500."""

    @app.exception_handler(err.ShipyardError)
    async def _shipyard(request: Request, exc: err.ShipyardError) -> Response:
        status = status_of(exc)
        if status >= 500:
            logger.error("request failed: %s", exc)
        if mlflow_errors.is_mlflow(request):
            return mlflow_errors.of(exc)
        if pages.is_page(request):
            return pages.error_page(request, status, exc.message)
        response = error_response(status, exc.message, type(exc).__name__, exc.context)
        if "retry_after" in exc.context:
            response.headers["Retry-After"] = str(exc.context["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"invalid request: {where}: {first.get('msg', 'bad value')}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more)"
        if mlflow_errors.is_mlflow(request):
            return mlflow_errors.body("INVALID_PARAMETER_VALUE", message, 400)
        if pages.is_page(request):
            return pages.error_page(request, 400, message)
        return error_response(422, message, "InvalidInputError", {"problems": len(problems)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if mlflow_errors.is_mlflow(request):
            return mlflow_errors.of_http(exc.status_code, str(exc.detail))
        if pages.is_page(request) and exc.status_code in (404, 405):
            return pages.error_page(request, exc.status_code, str(exc.detail))
        kind = {404: "NotFoundError", 405: "InvalidInputError", 413: "InvalidInputError"}.get(
            exc.status_code, "HTTPError"
        )
        return error_response(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        if mlflow_errors.is_mlflow(request):
            return mlflow_errors.body(
                "INTERNAL_ERROR", f"internal error: {type(exc).__name__}", 500
            )
        return error_response(500, f"internal error: {type(exc).__name__}", "InternalError")
