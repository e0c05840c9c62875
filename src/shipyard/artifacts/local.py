"""LocalBlobStore: blobs in a folder, at ``sha256/ab/cd/<digest>``, written atomically."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from shipyard.artifacts._spool import spool
from shipyard.core.blobs import BlobRef, StoredBlob
from shipyard.core.errors import NotFoundError, StoreError
from shipyard.core.hashing import CHUNK_SIZE, check_digest, file_chunks, is_digest
from shipyard.core.paths import confined


class LocalBlobStore:
    """Content-addressed blobs in a local folder (the embedded default)."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root).expanduser().resolve()

    @property
    def root(self) -> str:
        """The folder that holds the blobs."""
        return str(self._root)

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return confined(self._root, f"sha256/{digest[:2]}/{digest[2:4]}/{digest}")

    def _commit(self, tmp: Path, digest: str, size: int) -> BlobRef:
        final = self._path(digest)
        try:
            if final.exists():
                tmp.unlink()  # the same bytes are stored once
                os.utime(final)  # written again: the orphan sweep's grace period restarts
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write blob under {self.root}: {exc}") from exc
        return BlobRef(digest, size)

    def put_file(self, path: Path) -> BlobRef:
        """Copy a file in, hashing it on the way."""
        return self.put_chunks(file_chunks(path))

    def put_chunks(self, chunks: Iterable[bytes], max_size: int | None = None) -> BlobRef:
        """Stream bytes in through a temp file in the store, then rename into place."""
        try:
            tmp, digest, size = spool(chunks, self._root / "tmp", max_size)
        except OSError as exc:
            raise StoreError(f"cannot write blob under {self.root}: {exc}") from exc
        return self._commit(tmp, digest, size)

    def exists(self, digest: str) -> bool:
        """Tell whether the blob is stored."""
        return self._path(digest).is_file()

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """Yield the blob's bytes; links are refused so nothing outside the store is read."""
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {digest[:12]}... is missing from {self.root}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read blob {digest[:12]}...: {exc}") from exc
        return _read_fd(fd)

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """The blobs under sha256/ (links and stray names are not blobs)."""
        folder = self._root / "sha256"
        if not folder.is_dir():
            return
        for path in folder.rglob("*"):
            if is_digest(path.name) and path.is_file() and not path.is_symlink():
                stat = path.stat()
                yield StoredBlob(path.name, stat.st_size, stat.st_mtime)

    def delete(self, digest: str, *, older_than: float) -> bool:
        """Remove a blob last written before ``older_than``."""
        path = self._path(digest)
        try:
            if path.stat().st_mtime >= older_than:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_temp(self, older_than: float) -> int:
        """Remove upload temp files last written before ``older_than``; how many."""
        removed = 0
        for path in (self._root / "tmp").glob("upload-*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < older_than:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def verify(self, digest: str) -> bool:
        """Re-hash the stored bytes."""
        hasher = hashlib.sha256()
        for chunk in self.read_chunks(digest):
            hasher.update(chunk)
        return hasher.hexdigest() == digest


def _read_fd(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
