"""Prefixed, sortable ids: ``run_01jd3k...`` (TypeID style).

An id is a type prefix, an underscore and 26 lower-case Crockford base32 characters that
encode 128 bits: a 48-bit millisecond timestamp and 80 random bits. Ids made in the same
process and millisecond increase monotonically, so sorting ids sorts by creation time and a
log line tells what kind of object an id names. The 128-bit value maps 1:1 to a UUID, which
is what OpenLineage needs as a run id.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

from shipyard.core.errors import InvalidInputError

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_BODY = 26
_PREFIX_RE = re.compile(r"^[a-z]{1,8}$")
_ID_RE = re.compile(r"^([a-z]{1,8})_([0-9a-hjkmnp-tv-z]{26})$")

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(_BODY):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _next_value() -> int:
    global _last_ms, _last_rand
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            now = _last_ms
            rand = _last_rand + 1
            if rand >= 1 << 80:  # 2**80 ids in one millisecond: move to the next one
                now += 1
                rand = int.from_bytes(os.urandom(10), "big") >> 1
        else:
            # Leave headroom so the monotonic increments cannot overflow 80 bits.
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms, _last_rand = now, rand
        return (now << 80) | rand


def new_id(prefix: str) -> str:
    """Return a new sortable id with the given type prefix, e.g. ``new_id("run")``."""
    if not _PREFIX_RE.match(prefix):
        raise InvalidInputError(f"id prefix must match [a-z]{{1,8}}; got {prefix!r}", value=prefix)
    return f"{prefix}_{_encode(_next_value())}"


def parse_id(value: str, prefix: str | None = None) -> tuple[str, int]:
    """Split an id into its prefix and 128-bit value, checking the prefix when given."""
    match = _ID_RE.match(value) if isinstance(value, str) else None
    if match is None or (prefix is not None and match.group(1) != prefix):
        want = f"{prefix}_" if prefix else "<prefix>_"
        raise InvalidInputError(
            f"id must look like '{want}' followed by 26 base32 characters; got {value!r}",
            value=value,
        )
    number = 0
    for char in match.group(2):
        number = (number << 5) | _DECODE[char]
    if number >> 128:
        raise InvalidInputError(f"id is out of range; got {value!r}", value=value)
    return match.group(1), number


def id_to_uuid(value: str) -> uuid.UUID:
    """Map an id to the UUID with the same 128 bits (stable, reversible)."""
    return uuid.UUID(int=parse_id(value)[1])


def id_timestamp_ms(value: str) -> int:
    """Return the creation time, in epoch milliseconds, encoded in an id."""
    return parse_id(value)[1] >> 80
