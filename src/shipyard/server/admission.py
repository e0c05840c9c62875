"""Admission control for the model server: a bounded wait for the model, shed early.

Under more traffic than a worker can score, an unbounded queue makes every request late:
clients time out while the server still scores what they abandoned, and it takes minutes
to drain. Here at most ``max_queue`` requests wait; one more is refused at once (503 with
Retry-After), one that waited ``timeout`` seconds is refused too, and one whose client
has gone is dropped instead of scored.

While only a small batch waits, and briefly, requests are scored right on the event loop
(the fast path: a thread hop per request costs about a third of the peak throughput). As
soon as a real queue forms, they are scored in a worker thread, one at a time, so the
event loop keeps reading sockets and sheds new arrivals instead of leaving them unseen
in the kernel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

#: A request that waited less than this is not asked whether its client is still there.
_CHECK_GONE_AFTER = 0.05
#: Scored on the loop while at most this many wait and none waited longer than
#: ``_INLINE_WAIT`` seconds: a small batch costs the loop a few milliseconds at most.
_INLINE_BATCH = 16
_INLINE_WAIT = 0.02


class ShedError(Exception):
    """A request refused before scoring; ``reason`` labels the metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Admission:
    """One request scoring at a time and at most ``max_queue`` waiting, per process."""

    def __init__(self, *, max_queue: int, timeout: float) -> None:
        self.max_queue = max_queue
        self.timeout = timeout
        self.limiter = anyio.CapacityLimiter(1)
        self.waiting = 0

    async def run(
        self, fn: Callable[[], T], gone: Callable[[], Awaitable[bool]], arrived: float
    ) -> T:
        """Score with ``fn`` when its turn comes.

        ``arrived`` is when the request reached the app (``time.perf_counter()``).

        Raises:
            ShedError: the queue is full, the request waited past the timeout, or ``gone()``
                says its client disconnected meanwhile.
        """
        if self.waiting >= self.max_queue:
            raise ShedError(
                "overloaded", f"the server is overloaded ({self.waiting} requests waiting)"
            )
        self.waiting += 1
        try:
            # Let the requests read in the same turn of the loop register first.
            await asyncio.sleep(0)
            try:
                with anyio.fail_after(max(0.0, self.timeout - (time.perf_counter() - arrived))):
                    await self.limiter.acquire()
            except TimeoutError:
                raise ShedError(
                    "queue_timeout", f"the request waited {self.timeout:g} s for the model"
                ) from None
        finally:
            self.waiting -= 1
        try:
            waited = time.perf_counter() - arrived
            if waited > _CHECK_GONE_AFTER and await gone():
                raise ShedError("client_gone", "the client disconnected while waiting")
            if self.waiting < _INLINE_BATCH and waited < _INLINE_WAIT:
                return fn()  # the fast path, no thread hop
            return await anyio.to_thread.run_sync(fn)
        finally:
            self.limiter.release()
