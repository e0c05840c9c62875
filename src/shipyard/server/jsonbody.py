"""JSON request bodies parsed once, safely: every API route uses :class:`JsonRoute`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import anyio.from_thread
from fastapi import Request, Response
from fastapi.routing import APIRoute

from shipyard.core.jsonsafe import parse_json


class JsonRequest(Request):
    """A request whose ``json()`` refuses deep nesting, lone surrogates and huge integers.

    Starlette's ``json.loads`` turns such bodies into RecursionError or, later, encoding
    and overflow errors deep in a store: 500s for what is bad input (a 400).
    """

    async def json(self) -> Any:
        """The body parsed by :func:`shipyard.core.jsonsafe.parse_json`."""
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """An API route whose handler sees a :class:`JsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so body parsing goes through ``JsonRequest``."""
        handler = super().get_route_handler()
        # Parse a declared JSON body before FastAPI does, so a refusal keeps its reason
        # (FastAPI answers every other parsing failure with a bare "error parsing the body").
        declared = self.body_field is not None

        async def route(request: Request) -> Response:
            wrapped = JsonRequest(request.scope, request.receive)
            if declared and "json" in wrapped.headers.get("content-type", "application/json"):
                await wrapped.json()
            return await handler(wrapped)

        return route


def request_chunks(request: Request) -> Iterator[bytes]:
    """The request body as chunks for a worker thread, pulled from the event loop."""
    stream: AsyncIterator[bytes] = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk
