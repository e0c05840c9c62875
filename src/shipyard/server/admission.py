"""Admission control for the model server: a bounded wait for the model, shed early.

Under more traffic than a worker can score, an unbounded queue makes every request late:
clients time out while the server still scores what they abandoned, and it takes minutes
to drain. Here at most ``max_queue`` requests wait for the model; one more is refused at
once (503 with Retry-After), one that waited ``timeout`` seconds is refused too, and a
request whose client has gone is dropped before it is scored. The model runs in a worker
thread so the event loop keeps reading (and shedding) new requests while it scores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class ShedError(Exception):
    """A request refused before scoring; ``reason`` labels the metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Admission:
    """At most ``concurrency`` requests scoring and ``max_queue`` waiting, per process."""

    def __init__(self, *, max_queue: int, timeout: float, concurrency: int = 1) -> None:
        self.max_queue = max_queue
        self.timeout = timeout
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.waiting = 0

    async def run(
        self,
        fn: Callable[[], T],
        gone: Callable[[], Awaitable[bool]],
    ) -> T:
        """Score with ``fn`` in a worker thread once a slot is free.

        Raises:
            ShedError: the queue is full, the wait passed the timeout, or ``gone()`` says
                the client disconnected before its turn came.
        """
        if self.limiter.available_tokens < 1:
            if self.waiting >= self.max_queue:
                raise ShedError(
                    "overloaded", f"the server is overloaded ({self.waiting} requests waiting)"
                )
            self.waiting += 1
            try:
                with anyio.fail_after(self.timeout):
                    await self.limiter.acquire()
            except TimeoutError:
                raise ShedError(
                    "queue_timeout", f"the request waited {self.timeout:g} s for the model"
                ) from None
            finally:
                self.waiting -= 1
        else:
            await self.limiter.acquire()
        try:
            if await gone():
                raise ShedError("client_gone", "the client disconnected while waiting")
            return await anyio.to_thread.run_sync(fn)
        finally:
            self.limiter.release()
