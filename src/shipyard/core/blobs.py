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
