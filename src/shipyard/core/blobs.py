"""The blob store port shared by every capability: bytes in, sha256 digest out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: its sha256 digest and size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as the store holds it, for consistency checks: when it was last written."""

    digest: str
    size: int
    modified: float  # seconds since the epoch


class BlobStore(Protocol):
    """Content-addressed storage: the same bytes are stored once, under their sha256."""

    @property
    def root(self) -> str:
        """Where the blobs live, as a path or URL (for messages and lineage)."""
        ...

    def put_file(self, path: Path) -> BlobRef:
        """Store a file's bytes; return their digest. Atomic: no half-written blob is seen."""
        ...

    def put_chunks(self, chunks: Iterable[bytes], max_size: int | None = None) -> BlobRef:
        """Store a stream of bytes without holding it in memory; refuse past ``max_size``."""
        ...

    def exists(self, digest: str) -> bool:
        """Tell whether the blob is stored."""
        ...

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """Yield the blob's bytes in chunks; raise NotFoundError when it is missing."""
        ...

    def verify(self, digest: str) -> bool:
        """Re-hash the stored bytes and tell whether they still match ``digest``."""
        ...

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob."""
        ...

    def delete_temp(self, older_than: float) -> int:
        """Remove what interrupted uploads left, last written before ``older_than``."""
        ...

    def delete(self, digest: str, *, older_than: float) -> bool:
        """Remove a blob last written before ``older_than``; whether it was removed.

        Only the orphan sweep deletes: blobs are otherwise immutable. Storing bytes that are
        already there counts as writing them, so a fresh upload is never swept.
        """
        ...
