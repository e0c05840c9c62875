"""Client-side metric batching: log calls append to memory, a flusher writes in bulk.

Memory is bounded: when ``max_points`` are waiting, the logging thread writes them itself
(back-pressure) instead of letting the buffer grow. A background thread flushes every
``interval`` seconds, so a crashed process loses at most the last interval; ``close``
flushes what is left. Each batch carries an id, so a retried write is applied once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from shipyard.core.errors import ShipyardError, StoreError
from shipyard.core.ids import new_id
from shipyard.tracking.models import Metric, MetricBatch

logger = logging.getLogger(__name__)


class MetricBuffer:
    """Buffers metric points of one run and writes them through ``sink`` in batches."""

    def __init__(
        self,
        run_id: str,
        sink: Callable[[MetricBatch], None],
        *,
        max_points: int = 10_000,
        interval: float = 1.0,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_every: float = 30.0,
    ) -> None:
        self.run_id = run_id
        self._heartbeat = heartbeat
        self.heartbeat_every = heartbeat_every
        self._last_beat = time.monotonic()
        self.max_points = max_points
        self.interval = interval
        self._sink = sink
        self._points: list[Metric] = []
        self._pending: MetricBatch | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: ShipyardError | None = None
        self.flushed_points = 0

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"shipyard-flush-{self.run_id}", daemon=True
            )
            self._thread.start()

    def add(self, key: str, value: float, step: int, timestamp: int) -> None:
        """Queue one point; write synchronously when the buffer is full."""
        with self._lock:
            self._points.append(Metric(key, value, step, timestamp))
            full = len(self._points) >= self.max_points
        if full:
            self.flush()

    def add_many(self, points: list[Metric]) -> None:
        """Queue several points at once."""
        with self._lock:
            self._points.extend(points)
            full = len(self._points) >= self.max_points
        if full:
            self.flush()

    def flush(self) -> None:
        """Write every queued point now; re-raise the write's error to the caller."""
        with self._flush_lock:
            batch = self._pending
            if batch is None:
                with self._lock:
                    points, self._points = self._points, []
                if not points:
                    return
                batch = MetricBatch(
                    run_id=self.run_id,
                    batch_id=new_id("batch"),
                    metrics=points,
                )
            try:
                self._sink(batch)
            except ShipyardError:
                # Keep the batch (same id, so a later retry is applied exactly once).
                self._pending = batch
                raise
            self._pending = None
            self.flushed_points += len(batch.metrics)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except ShipyardError as exc:
                self._error = exc
                logger.warning("metric flush for run %s failed, will retry: %s", self.run_id, exc)
            self._beat()

    def _beat(self) -> None:
        """Tell the store the run is alive, every ``heartbeat_every`` seconds."""
        if self._heartbeat is None or time.monotonic() - self._last_beat < self.heartbeat_every:
            return
        self._last_beat = time.monotonic()
        try:
            self._heartbeat()
        except ShipyardError as exc:
            logger.warning("heartbeat of run %s failed: %s", self.run_id, exc)

    def close(self) -> None:
        """Stop the flusher and write what is left; raise if it cannot be written."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.interval * 2))
        self._thread = None
        try:
            self.flush()
        except ShipyardError as exc:
            raise StoreError(
                f"could not write buffered metrics of run {self.run_id}: {exc}",
                run_id=self.run_id,
            ) from exc

    @property
    def queued(self) -> int:
        """Points waiting to be written."""
        with self._lock:
            pending = len(self._pending.metrics) if self._pending else 0
            return len(self._points) + pending
