"""Content hashing: every blob is addressed by the sha256 of its bytes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from shipyard.core.errors import InvalidInputError

CHUNK_SIZE = 1 << 20
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: Path) -> tuple[str, int]:
    """Return the hex sha256 and size of a file, reading it in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_chunks(path: Path, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Yield a file's bytes in chunks (uploads stream them; nothing is read whole)."""
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def sha256_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """Return the hex sha256 and total size of a sequence of byte chunks."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def is_digest(value: str) -> bool:
    """Tell whether ``value`` is a lower-case hex sha256 digest."""
    return isinstance(value, str) and _DIGEST_RE.match(value) is not None


def check_digest(value: str) -> str:
    """Return ``value`` if it is a lower-case hex sha256 digest, else raise."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise InvalidInputError(
            f"digest must be 64 lower-case hex characters (sha256); got {value!r}", value=value
        )
    return value
