"""Run artifacts kept locally: bytes in a blob store, names in the metadata store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from shipyard.core.blobs import BlobStore
from shipyard.core.clock import now_ms
from shipyard.core.errors import StoreError
from shipyard.core.paths import check_artifact_name
from shipyard.tracking.models import ArtifactRecord
from shipyard.tracking.ports import ArtifactRecordStore


class BlobRunArtifacts:
    """Implements RunArtifactStore over a BlobStore and an ArtifactRecordStore."""

    def __init__(self, blobs: BlobStore, records: ArtifactRecordStore) -> None:
        self.blobs = blobs
        self.records = records

    def log_chunks(
        self,
        run_id: str,
        name: str,
        chunks: Iterable[bytes],
        media_type: str,
        max_size: int | None = None,
    ) -> ArtifactRecord:
        """Store streamed bytes (an upload) as a run artifact without buffering them whole."""
        name = check_artifact_name(name)
        ref = self.blobs.put_chunks(chunks, max_size=max_size)
        return self.records.record_artifact(
            ArtifactRecord(run_id, name, ref.digest, ref.size, media_type, now_ms())
        )

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return the run's artifact records by name."""
        return self.records.list_artifacts(run_id)

    def get_artifact(self, run_id: str, name: str) -> ArtifactRecord:
        """Return one artifact record."""
        return self.records.get_artifact(run_id, check_artifact_name(name))

    def read_artifact(self, run_id: str, name: str) -> Iterator[bytes]:
        """Yield the bytes; raise StoreError at the end if they no longer match the digest."""
        record = self.get_artifact(run_id, name)
        return verified_chunks(self.blobs.read_chunks(record.digest), record)


def verified_chunks(chunks: Iterable[bytes], record: ArtifactRecord) -> Iterator[bytes]:
    """Pass chunks through while hashing them; raise if the total differs from the record."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != record.digest:
        raise StoreError(
            f"artifact {record.name!r} of run {record.run_id} does not match its recorded "
            f"sha256 {record.digest[:12]}...: the stored bytes were altered",
            run_id=record.run_id,
            name=record.name,
        )
