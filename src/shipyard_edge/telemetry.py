"""Telemetry a device keeps while offline: each prediction's inputs, outputs and latency.

Records go to a SQLite file (the standard library's ``sqlite3``: it survives a power cut
mid-write, which a JSON-lines file does not) bounded in bytes: when it is full the oldest
records go first and are counted, and the count reaches the platform with the next upload.
Each record has a sequence number that is never reused, so the platform can take a batch
twice (an acknowledgement lost on a bad link) and keep it once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard_edge.model import EdgeModel, Prediction

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Pending:
    """What waits to be uploaded."""

    records: int
    bytes: int
    dropped: int


class TelemetryBuffer:
    """A bounded on-disk queue of prediction records (safe to share between threads)."""

    def __init__(self, folder: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(folder) / "telemetry.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "size INTEGER NOT NULL, body TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )

    def record(self, model: EdgeModel, rows: Any, prediction: Prediction) -> None:
        """Keep one prediction call: its rows (as given), outputs and latency."""
        name, version = model.model
        if isinstance(rows, np.ndarray):
            inputs = {n: _finite(rows[:, j].tolist()) for j, n in enumerate(model.names)}
        elif isinstance(rows, dict):
            inputs = {n: list(rows[n]) for n in model.names}
        else:
            inputs = {n: [r[n] for r in rows] for n in model.names}
        # The names the model server logs under (predict, predict_proba): the platform
        # flattens them the same way, so monitors read a device group like a deployment.
        outputs: dict[str, Any] = {"predict": prediction.label.tolist()}
        if prediction.probabilities is not None:
            outputs["predict_proba"] = np.round(prediction.probabilities, 6).tolist()
        body = json.dumps(
            {
                "ts_ms": int(time.time() * 1000),
                "latency_seconds": prediction.latency_seconds,
                "bundle": model.bundle_id,
                "model": name,
                "version": version,
                "inputs": inputs,
                "outputs": outputs,
            },
            separators=(",", ":"),
            default=_plain,
        )
        self.append(body)

    def append(self, body: str) -> None:
        """Store one encoded record, dropping the oldest while over the size bound."""
        size = len(body.encode())
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO records (size, body) VALUES (?, ?)", (size, body))
                self._trim()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _trim(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM records").fetchone()[0]
        if total <= self.max_bytes:
            return
        dropped = 0
        for seq, size in self._db.execute("SELECT seq, size FROM records ORDER BY seq").fetchall():
            if total <= self.max_bytes:
                break
            self._db.execute("DELETE FROM records WHERE seq = ?", (seq,))
            total -= size
            dropped += 1
        self._add_meta("dropped", dropped)

    def _add_meta(self, key: str, delta: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (key, delta),
        )

    def pending(self) -> Pending:
        """Records and bytes waiting, and records dropped since the last upload."""
        with self._lock:
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records"
            ).fetchone()
            row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return Pending(int(count), int(size), int(row[0]) if row else 0)

    def batch(self, max_bytes: int) -> tuple[list[tuple[int, str]], int]:
        """The oldest records up to ``max_bytes`` (at least one), and the dropped count."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, size, body FROM records ORDER BY seq LIMIT 10000"
            ).fetchall()
            dropped = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        out: list[tuple[int, str]] = []
        used = 0
        for seq, size, body in rows:
            if out and used + size > max_bytes:
                break
            out.append((seq, body))
            used += size
        return out, int(dropped[0]) if dropped else 0

    def acknowledge(self, last_seq: int, dropped: int) -> None:
        """Forget records up to ``last_seq`` and ``dropped`` of the dropped count: the
        platform has them."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM records WHERE seq <= ?", (last_seq,))
            self._add_meta("dropped", -dropped)
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


def _finite(values: list[Any]) -> list[Any]:
    """NaN (a missing value in a matrix) as null: the batch stays strict JSON."""
    return [None if isinstance(v, float) and v != v else v for v in values]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")
