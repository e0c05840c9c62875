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


def group(points: Iterable[Metric]) -> dict[str, list[tuple[int, int, float]]]:
    """Points by key, each key's in the order given, as ``(step, timestamp, value)``."""
    groups: dict[str, list[tuple[int, int, float]]] = {}
    for key, value, step, timestamp in points:
        found = groups.get(key)
        if found is None:
            groups[key] = found = []
        found.append((step, timestamp, value))
    return groups


def chunks(
    triples: list[tuple[int, int, float]], size: int = CHUNK_POINTS
) -> Iterator[tuple[int, bytes]]:
    """``(count, blob)`` rows of at most ``size`` points each."""
    for first in range(0, len(triples), size):
        part = triples[first : first + size]
        yield len(part), b"".join(POINT.pack(*p) for p in part)


def unpack(key: str, blobs: Iterable[bytes]) -> list[Metric]:
    """The points of ``key`` stored in ``blobs``, in stored order."""
    return [
        Metric(key, value, step, timestamp)
        for blob in blobs
        for step, timestamp, value in POINT.iter_unpack(blob)
    ]
