"""Request body limits, enforced while the body streams in (not after buffering it)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes its limit (handled as a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


class BodyLimitMiddleware:
    """Answer 413 with a JSON body once a request's body passes its limit.

    Artifact uploads (``PUT .../artifacts/...``) get ``upload_limit``; every other request
    ``json_limit``. A declared Content-Length over the limit is refused before reading.
    """

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``receive`` so it counts bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "PUT" and "/artifacts/" in scope["path"]
        limit = self.upload_limit if is_upload else self.json_limit
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await _reject(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_json_error(
    send: Any,
    status: int,
    body: dict[str, Any],
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer at the ASGI level (middleware, before any route) with a JSON error body."""
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _reject(send: Any, limit: int) -> None:
    await send_json_error(
        send,
        413,
        {
            "error": f"request body is larger than the limit of {limit} bytes",
            "type": "InvalidInputError",
            "context": {"limit": limit},
        },
    )
