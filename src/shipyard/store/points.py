"""Metric points packed for storage: one blob per key of each batch.

A point is a little-endian record of step (int64), timestamp (int64) and value (float64),
so NaN and infinities are stored as the floats they are and a key's points of one batch
are one row. Writing a row per point made the database the largest share of a
``log_batch`` (about 2.5 ms of SQLite inserts and index updates per 1,000 points here);
packed, the same batch is a few dozen rows.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from shipyard.tracking.models import Metric

#: One stored point: step, timestamp, value.
POINT = struct.Struct("<qqd")

#: The most points one stored row holds; longer runs of one key are split.
CHUNK_POINTS = 50_000


class Packed:
    """One key's points of a batch: their records, and the newest point among them."""

    __slots__ = ("latest", "records")

    def __init__(self, first: tuple[int, int, float]) -> None:
        self.records: list[bytes] = []
        self.latest = first

    def rows(self, size: int = CHUNK_POINTS) -> Iterator[tuple[int, bytes]]:
        """``(count, blob)`` rows of at most ``size`` points each."""
        for first in range(0, len(self.records), size):
            part = self.records[first : first + size]
            yield len(part), b"".join(part)


def pack(points: Iterable[Metric]) -> dict[str, Packed]:
    """Points by key, in the order given, each key's newest point found on the way: the
    highest step, then the latest timestamp, then the last logged (MLflow's rule)."""
    packed: dict[str, Packed] = {}
    record = POINT.pack
    for key, value, step, timestamp in points:
        found = packed.get(key)
        if found is None:
            packed[key] = found = Packed((step, timestamp, value))
        found.records.append(record(step, timestamp, value))
        newest = found.latest
        if step > newest[0] or (step == newest[0] and timestamp >= newest[1]):
            found.latest = (step, timestamp, value)
    return packed


def unpack(key: str, blobs: Iterable[bytes]) -> list[Metric]:
    """The points of ``key`` stored in ``blobs``, in stored order."""
    return [
        Metric(key, value, step, timestamp)
        for blob in blobs
        for step, timestamp, value in POINT.iter_unpack(blob)
    ]
