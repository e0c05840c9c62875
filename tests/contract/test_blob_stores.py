"""Every BlobStore: the local folder and fsspec (memory:// here; s3:// plugs in the same way)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.artifacts.local import LocalBlobStore
from shipyard.artifacts.remote_fs import FsspecBlobStore
from shipyard.bootstrap import local_backend
from shipyard.core.blobs import BlobStore
from shipyard.core.errors import InvalidInputError, NotFoundError, StoreError
from shipyard.core.settings import Settings


@pytest.fixture(params=["local", "fsspec-memory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    else:
        yield FsspecBlobStore(f"memory://shipyard-{uuid.uuid4().hex}")


def test_same_bytes_are_stored_once_under_their_sha256(blobs: BlobStore, tmp_path: Path) -> None:
    data = b"fraud" * 100_000
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    first = blobs.put_file(src)
    second = blobs.put_chunks(iter([data[:7], data[7:]]))
    assert first == second
    assert first.digest == hashlib.sha256(data).hexdigest() and first.size == len(data)
    assert blobs.exists(first.digest)
    assert b"".join(blobs.read_chunks(first.digest)) == data
    assert blobs.verify(first.digest)


def test_missing_and_malformed_digests(blobs: BlobStore) -> None:
    with pytest.raises(NotFoundError):
        list(blobs.read_chunks("0" * 64))
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63):
        with pytest.raises(InvalidInputError):
            blobs.exists(bad)


def test_size_limit_leaves_nothing_behind(blobs: BlobStore) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        blobs.put_chunks(iter([b"x" * 600, b"x" * 600]), max_size=1000)
    assert not blobs.exists(hashlib.sha256(b"x" * 1200).hexdigest())


def test_tampered_artifact_is_refused_on_download(tmp_path: Path) -> None:
    backend = local_backend(Settings(uri=str(tmp_path / "store")))
    try:
        svc = backend.tracking
        run = svc.create_run("fraud")
        rec = svc.log_bytes(run.id, b"genuine model bytes", "model.bin")
        blob = next((tmp_path / "store" / "artifacts" / "sha256").rglob(rec.digest))
        blob.write_bytes(b"tampered model bytes")
        with pytest.raises(StoreError, match="altered"):
            svc.download_artifact(run.id, "model.bin", tmp_path / "out.bin")
        assert not (tmp_path / "out.bin").exists()
    finally:
        backend.close()
