"""The prediction log: Parquet files partitioned by deployment, date and hour.

The request path only puts a record on a bounded queue (``put_nowait``); one background
thread turns batches of records into Arrow tables and appends them as row groups to an
open file per (deployment, version, hour). Failed requests (no rows, an HTTP code) go to
``failed-*.parquet`` files beside them, so monitors count errors per window. Files are
written under a dot-name and renamed to ``part-*.parquet`` (``failed-*``) when closed
(every ``roll_seconds``, at the hour, at shutdown), so a reader only ever sees complete
files. When the queue is full or the disk fails, records are dropped and counted, and
serving goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.serving.ports import PredictionRecord

logger = logging.getLogger(__name__)

Counter = Callable[[str, int], None]  # (event, rows): "written", "dropped:<reason>"
FAILED = "failed"  # the file stem (and key) of failed requests


def partition_of(deployment: str, ts_ms: int) -> str:
    """``deployment=<d>/date=YYYY-MM-DD/hour=HH`` (Hive style, read by pyarrow.dataset)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return f"deployment={deployment}/date={moment:%Y-%m-%d}/hour={moment:%H}"


@dataclass
class _OpenFile:
    writer: Any
    tmp: Path
    final: Path
    opened: float
    schema: Any
    rows: int = 0


@dataclass
class LogStats:
    """What the log did since start (also exported to Prometheus by the server)."""

    written_rows: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    files: int = 0


class ParquetPredictionLog:
    """A PredictionSink that writes Parquet in a background thread."""

    def __init__(
        self,
        root: Path | str,
        *,
        max_queue: int = 10_000,
        flush_seconds: float = 1.0,
        roll_seconds: float = 60.0,
        on_event: Counter | None = None,
    ) -> None:
        self.root = Path(root)
        self.flush_seconds = flush_seconds
        self.roll_seconds = roll_seconds
        self.stats = LogStats()
        self._on_event = on_event
        self._queue: queue.Queue[PredictionRecord | None] = queue.Queue(maxsize=max_queue)
        self._open: dict[tuple[str, str, str], _OpenFile] = {}
        self._seq = 0
        self._last_error_log = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shipyard-predlog", daemon=True)
        self._thread.start()

    # request path ------------------------------------------------------------------------

    def submit(self, record: PredictionRecord) -> bool:
        """Queue a record without blocking; count it as dropped when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop("queue_full", record.rows)
            return False
        return True

    @property
    def queue_depth(self) -> int:
        """Records waiting to be written."""
        return self._queue.qsize()

    def _drop(self, reason: str, rows: int) -> None:
        self.stats.dropped_rows[reason] = self.stats.dropped_rows.get(reason, 0) + rows
        if self._on_event is not None:
            self._on_event(f"dropped:{reason}", rows)

    # writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[PredictionRecord] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
                stop = False
            else:
                stop = item is None
            if item is not None:
                pending.append(item)
                if len(pending) < 5_000 and time.monotonic() < deadline:
                    continue
            if pending:
                self._write(pending)
                pending = []
            self._roll(force=stop)
            deadline = time.monotonic() + self.flush_seconds
            if stop:
                return

    def _write(self, records: list[PredictionRecord]) -> None:
        groups: dict[tuple[str, str, str], list[PredictionRecord]] = {}
        for r in records:
            if r.status == 200:
                key = (partition_of(r.deployment, r.timestamp_ms), r.model, r.version)
            else:  # a model name is never empty: no clash with predictions' files
                key = (partition_of(r.deployment, r.timestamp_ms), "", FAILED)
            groups.setdefault(key, []).append(r)
        for key, batch in groups.items():
            rows = sum(r.rows for r in batch)
            try:
                table = _table(batch) if key[1] else _failed_table(batch)
                handle = self._file_for(key, table.schema)
                if not table.schema.equals(handle.schema):
                    table = table.cast(handle.schema)
                handle.writer.write_table(table)
                handle.rows += table.num_rows
            except Exception as exc:  # noqa: BLE001 - disk full, permissions, odd values
                self._discard(key)
                self._drop("write_error", rows)
                self._log_error(exc)
                continue
            self.stats.written_rows += rows
            if self._on_event is not None:
                self._on_event("written", rows)

    def _file_for(self, key: tuple[str, str, str], schema: Any) -> _OpenFile:
        handle = self._open.get(key)
        if handle is not None:
            return handle
        import pyarrow.parquet as pq

        partition, _, version = key
        folder = self.root / partition
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stem = "failed" if version == FAILED and not key[1] else f"part-v{version}"
        name = f"{stem}-{int(time.time() * 1000)}-{os.getpid()}-{self._seq}.parquet"
        tmp = folder / f".{name}.inprogress"
        writer = pq.ParquetWriter(tmp, schema, compression="zstd")
        handle = _OpenFile(writer, tmp, folder / name, time.monotonic(), schema)
        self._open[key] = handle
        return handle

    def _roll(self, *, force: bool) -> None:
        now = time.monotonic()
        for key, handle in list(self._open.items()):
            if force or now - handle.opened >= self.roll_seconds or not self._current(key):
                self._close(key)

    def _current(self, key: tuple[str, str, str]) -> bool:
        hour = datetime.now(UTC).strftime("date=%Y-%m-%d/hour=%H")
        return key[0].endswith(hour)

    def _close(self, key: tuple[str, str, str]) -> None:
        handle = self._open.pop(key)
        try:
            handle.writer.close()
            handle.tmp.replace(handle.final)
            self.stats.files += 1
        except Exception as exc:  # noqa: BLE001 - same failure classes as writing
            self._drop("write_error", handle.rows)
            self.stats.written_rows -= handle.rows
            self._log_error(exc)
            handle.tmp.unlink(missing_ok=True)

    def _discard(self, key: tuple[str, str, str]) -> None:
        handle = self._open.pop(key, None)
        if handle is None:
            return
        with contextlib.suppress(Exception):  # the file is being thrown away anyway
            handle.writer.close()
        handle.tmp.unlink(missing_ok=True)

    def _log_error(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 60:
            self._last_error_log = now
            logger.error("prediction log: cannot write under %s: %s", self.root, exc)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, close every file, stop the thread."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                self._queue.put(None, timeout=timeout)
                break
            except queue.Full:  # pragma: no cover - writer stuck; give up on the rest
                return
        self._thread.join(timeout)


def _table(records: list[PredictionRecord]) -> Any:
    """One Arrow table for a batch of requests.

    Per-request values (request id, role) are expanded to rows by index in Arrow, not as
    Python lists: the writer shares the GIL with the request path, so building a batch
    must cost the server as little as possible.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    first = records[0]
    rows = np.fromiter((r.rows for r in records), dtype="int64", count=len(records))
    owner = pa.array(np.repeat(np.arange(len(records), dtype="int32"), rows))
    total = int(rows.sum())
    starts = np.repeat(np.cumsum(rows) - rows, rows)

    def per_request(values: list[Any], kind: Any) -> Any:
        return pc.take(pa.array(values, kind), owner)

    def constant(value: str) -> Any:
        return pc.take(pa.array([value], pa.string()), pa.array(np.zeros(total, "int32")))

    columns: dict[str, Any] = {
        "request_id": per_request([r.request_id for r in records], pa.string()),
        "row": pa.array((np.arange(total, dtype="int64") - starts).astype("int32")),
        "timestamp": per_request([r.timestamp_ms for r in records], pa.timestamp("ms", tz="UTC")),
        "model": constant(first.model),
        "version": constant(first.version),
        "role": per_request([r.role for r in records], pa.string()),
        "latency_seconds": per_request([r.latency_seconds for r in records], pa.float64()),
    }
    for name in first.inputs:
        columns[f"input.{name}"] = pa.array(np.concatenate([r.inputs[name] for r in records]))
    for name in first.outputs:
        columns[f"output.{name}"] = pa.array(np.concatenate([r.outputs[name] for r in records]))
    return pa.table(columns)


def _failed_table(records: list[PredictionRecord]) -> Any:
    """Failed requests: when, which version would have answered, the code, how long."""
    import pyarrow as pa

    return pa.table(
        {
            "request_id": pa.array([r.request_id for r in records], pa.string()),
            "timestamp": pa.array([r.timestamp_ms for r in records], pa.timestamp("ms", tz="UTC")),
            "model": pa.array([r.model for r in records], pa.string()),
            "version": pa.array([r.version for r in records], pa.string()),
            "role": pa.array([r.role for r in records], pa.string()),
            "status": pa.array([r.status for r in records], pa.int16()),
            "latency_seconds": pa.array([r.latency_seconds for r in records], pa.float64()),
        }
    )
