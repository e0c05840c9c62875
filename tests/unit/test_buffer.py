from __future__ import annotations

import threading
import time

import pytest

from shipyard.core.errors import StoreError
from shipyard.tracking.buffer import MetricBuffer
from shipyard.tracking.models import MetricBatch


class Sink:
    """An in-memory sink that can be told to fail, recording every batch it applies."""

    def __init__(self) -> None:
        self.batches: list[MetricBatch] = []
        self.applied: set[str] = set()
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, batch: MetricBatch) -> None:
        if self.fail:
            raise StoreError("down")
        with self.lock:
            self.batches.append(batch)
            self.applied.add(batch.batch_id)

    @property
    def points(self) -> int:
        return sum(len(b.metrics) for b in self.batches)


def test_full_buffer_writes_synchronously_and_stays_bounded() -> None:
    sink = Sink()
    buf = MetricBuffer("run_x", sink, max_points=100, interval=3600)
    for i in range(1050):
        buf.add("loss", float(i), i, 0)
        assert buf.queued < 100
    assert sink.points == 1000
    buf.close()
    assert sink.points == 1050


def test_background_flush_runs_on_the_interval() -> None:
    sink = Sink()
    buf = MetricBuffer("run_x", sink, max_points=10_000, interval=0.05)
    buf.start()
    buf.add("loss", 1.0, 0, 0)
    deadline = time.monotonic() + 5
    while sink.points == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.points == 1
    buf.close()


def test_failed_flush_keeps_the_batch_and_retries_with_the_same_id() -> None:
    sink = Sink()
    buf = MetricBuffer("run_x", sink, max_points=10_000, interval=3600)
    buf.add("loss", 1.0, 0, 0)
    sink.fail = True
    with pytest.raises(StoreError):
        buf.flush()
    assert buf.queued == 1
    sink.fail = False
    buf.add("loss", 2.0, 1, 0)
    buf.flush()
    buf.flush()
    assert [len(b.metrics) for b in sink.batches] == [1, 1]
    assert sink.points == 2


def test_close_raises_when_points_cannot_be_written() -> None:
    sink = Sink()
    buf = MetricBuffer("run_x", sink, max_points=10_000, interval=3600)
    buf.add("loss", 1.0, 0, 0)
    sink.fail = True
    with pytest.raises(StoreError, match="buffered metrics"):
        buf.close()
