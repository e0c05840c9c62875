"""A small httpx wrapper: base URL, bearer token, retries, and errors mapped back."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from shipyard.core import errors as err
from shipyard.wire.schemas import ACTOR_HEADER

_RETRY_STATUSES = {502, 503, 504}
_JSON = {"Content-Type": "application/json"}
_BY_NAME: dict[str, type[err.ShipyardError]] = {
    cls.__name__: cls
    for cls in (
        err.InvalidInputError,
        err.NotFoundError,
        err.ConflictError,
        err.PermissionDeniedError,
        err.AuthenticationError,
        err.StateTransitionError,
        err.PipelineError,
        err.StoreError,
    )
}
_BY_STATUS: dict[int, type[err.ShipyardError]] = {
    400: err.InvalidInputError,
    401: err.AuthenticationError,
    403: err.PermissionDeniedError,
    404: err.NotFoundError,
    409: err.ConflictError,
    413: err.InvalidInputError,
    422: err.InvalidInputError,
}


class RestClient:
    """HTTP access to a Shipyard server; server errors come back as the same exceptions."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        actor: str | None = None,
    ) -> None:
        headers = {"User-Agent": "shipyard-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if actor:
            # Who the local user says they are; only a server without auth believes it.
            headers[ACTOR_HEADER] = actor
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()

    def request(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send a request, retrying connection failures and 502-504 when it is safe to."""
        attempts = self.retries if idempotent else 1
        for attempt in range(attempts):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise err.StoreError(
                    f"cannot reach the Shipyard server at {self.base_url}: {exc}"
                ) from exc
            if response.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 400:
                raise _error_from(response)
            return response
        raise err.StoreError(f"no answer from {self.base_url}")  # pragma: no cover

    def content(self, method: str, path: str, **kwargs: Any) -> bytes:
        """Send a request and return the raw body (for pydantic's fast JSON validation)."""
        return self.request(method, path, **kwargs).content

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its decoded JSON body (None for 204)."""
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    def upload(self, path: str, chunks: Iterable[bytes], media_type: str) -> Any:
        """Stream bytes in the request body (not retried: the stream is consumed once)."""
        return self.request(
            "PUT", path, idempotent=False, content=chunks, headers={"Content-Type": media_type}
        ).json()

    def download(self, path: str) -> Iterator[bytes]:
        """Stream a response body in chunks."""
        with self.http.stream("GET", path) as response:
            if response.status_code >= 400:
                response.read()
                raise _error_from(response)
            yield from response.iter_bytes(1 << 20)


def _error_from(response: httpx.Response) -> err.ShipyardError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("error") or response.text[:200] or response.reason_phrase
    if not isinstance(message, str):
        message = str(message)
    cls = _BY_NAME.get(str(body.get("type")), _BY_STATUS.get(response.status_code, err.StoreError))
    context = body.get("context") if isinstance(body.get("context"), dict) else {}
    return cls(message, status_code=response.status_code, **(context or {}))


def json_body(model: BaseModel) -> dict[str, Any]:
    """Request keyword arguments sending a pydantic model as JSON (serialised once)."""
    return {"content": model.model_dump_json(), "headers": _JSON}


def seg(value: object) -> str:
    """One URL path segment, every reserved character escaped."""
    return quote(str(value), safe="")
