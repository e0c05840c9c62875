"""FsspecBlobStore: blobs on any fsspec filesystem (s3:// with the `s3` extra, gcs, memory)."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.artifacts._spool import spool
from shipyard.core.blobs import BlobRef, StoredBlob
from shipyard.core.errors import InvalidInputError, NotFoundError, StoreError
from shipyard.core.hashing import CHUNK_SIZE, check_digest, file_chunks, is_digest

_EXTRA_FOR = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


class FsspecBlobStore:
    """Content-addressed blobs under an fsspec URL such as ``s3://bucket/prefix``."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url, **storage_options)
        except ImportError as exc:
            scheme = self.url.split("://", 1)[0]
            extra = _EXTRA_FOR.get(scheme, scheme)
            raise InvalidInputError(
                f"artifact URL {self.url!r} needs a filesystem that is not installed; "
                f"install it with: pip install 'shipyard[{extra}]'"
            ) from exc
        except ValueError as exc:
            raise InvalidInputError(f"cannot use artifact URL {self.url!r}: {exc}") from exc
        # s3fs uploads 10 parts of 50 MiB at once by default: half a GiB in memory for a
        # large artifact. Smaller parts, fewer in flight: a bounded 32 MiB.
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        s3 = bool({"s3", "s3a"} & set(protocols))
        self._put_options: dict[str, Any] = (
            {"chunksize": 8 * 2**20, "max_concurrency": 4} if s3 else {}
        )
        # Reads fetch 50 MiB blocks by default (and keep two): 8 MiB ranges instead.
        self._read_options: dict[str, Any] = {"block_size": 8 * 2**20} if s3 else {}

    @property
    def root(self) -> str:
        """The URL that holds the blobs."""
        return self.url

    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.base}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def put_file(self, path: Path) -> BlobRef:
        """Upload a file's bytes once, under their digest."""
        return self.put_chunks(file_chunks(path))

    def put_chunks(self, chunks: Iterable[bytes], max_size: int | None = None) -> BlobRef:
        """Spool locally to learn the digest, then upload under it (atomic on object stores)."""
        tmp, digest, size = spool(chunks, Path(tempfile.gettempdir()), max_size)
        try:
            target = self._path(digest)
            if not self.fs.exists(target):
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(tmp), target, **self._put_options)
        except OSError as exc:
            raise StoreError(f"cannot write blob to {self.url}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return BlobRef(digest, size)

    def exists(self, digest: str) -> bool:
        """Tell whether the blob is stored."""
        return bool(self.fs.exists(self._path(digest)))

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """Yield the blob's bytes."""
        path = self._path(digest)
        try:
            handle = self.fs.open(path, "rb", **self._read_options)
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {digest[:12]}... is missing from {self.url}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read blob {digest[:12]}... from {self.url}: {exc}") from exc
        return _read(handle)

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """The blobs under ``sha256/`` (one listing call on object stores)."""
        try:
            found = self.fs.find(f"{self.base}/sha256", detail=True)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot list blobs in {self.url}: {exc}") from exc
        for path, info in found.items():
            name = path.rsplit("/", 1)[-1]
            if is_digest(name) and info.get("type", "file") == "file":
                yield StoredBlob(name, int(info.get("size") or 0), _modified(info))

    def delete(self, digest: str, *, older_than: float) -> bool:
        """Remove a blob last written before ``older_than``."""
        path = self._path(digest)
        try:
            if _modified(self.fs.info(path)) >= older_than:
                return False
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot delete blob {digest[:12]}... in {self.url}: {exc}") from exc
        return True

    def delete_temp(self, older_than: float) -> int:
        """Nothing to do: uploads spool in this machine's temp folder, never in the store."""
        return 0

    def verify(self, digest: str) -> bool:
        """Re-hash the stored bytes."""
        hasher = hashlib.sha256()
        for chunk in self.read_chunks(digest):
            hasher.update(chunk)
        return hasher.hexdigest() == digest


def _modified(info: dict[str, Any]) -> float:
    """Last-write time from a listing entry: object stores and filesystems name it apart."""
    for key in ("LastModified", "mtime", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
    return time.time()  # unknown: treat as new, so the sweep's grace period protects it


def _read(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
