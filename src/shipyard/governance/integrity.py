"""Store and blob consistency: what a crash can leave behind, found and swept.

Blobs are written before the records that name them, so a crash in between leaves an
orphan (bytes no record names): harmless, and swept once older than a grace period that
protects uploads still in flight. A record naming a missing blob is damage: reported,
never "fixed" by deleting the record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from shipyard.core.blobs import BlobStore
from shipyard.governance.audit import AuditService


class StoreIntegrity(Protocol):
    """What the check needs from the metadata database."""

    def problems(self) -> list[str]:
        """Damage the database reports about itself."""
        ...

    def referenced_digests(self) -> set[str]:
        """Every blob digest a record names."""
        ...


@dataclass
class ConsistencyReport:
    """What ``shipyard db check`` found, and what its sweep removed."""

    database: list[str] = field(default_factory=list)
    audit_ok: bool = True
    audit_reason: str | None = None
    blobs: int = 0
    referenced: int = 0
    missing: list[str] = field(default_factory=list)  # named by a record, not stored
    orphans: int = 0
    orphan_bytes: int = 0
    young_orphans: int = 0  # inside the grace period: maybe an upload in flight
    swept: int = 0
    swept_bytes: int = 0
    temp_files_swept: int = 0

    @property
    def ok(self) -> bool:
        """No damage: the database is sound, the chain verifies and no blob is missing."""
        return not self.database and self.audit_ok and not self.missing


class ConsistencyCheck:
    """Checks a store's database, audit chain and blobs against each other."""

    def __init__(self, integrity: StoreIntegrity, blobs: BlobStore, audit: AuditService) -> None:
        self.integrity = integrity
        self.blobs = blobs
        self.audit = audit

    def run(self, *, sweep: bool = False, grace_seconds: float = 86_400) -> ConsistencyReport:
        """Check everything; with ``sweep``, delete orphans older than the grace period.

        Records are read before blobs are listed, so a blob written (with its record)
        during the check is at worst a young orphan, never swept.
        """
        report = ConsistencyReport(database=self.integrity.problems())
        chain = self.audit.verify()
        report.audit_ok, report.audit_reason = chain.ok, chain.reason
        referenced = self.integrity.referenced_digests()
        report.referenced = len(referenced)
        cutoff = time.time() - grace_seconds
        stored: set[str] = set()
        old_orphans: list[tuple[str, int]] = []
        for blob in self.blobs.iter_blobs():
            stored.add(blob.digest)
            if blob.digest in referenced:
                continue
            report.orphans += 1
            report.orphan_bytes += blob.size
            if blob.modified < cutoff:
                old_orphans.append((blob.digest, blob.size))
            else:
                report.young_orphans += 1
        report.blobs = len(stored)
        report.missing = sorted(referenced - stored)
        if sweep:
            self._sweep(report, old_orphans, cutoff, grace_seconds)
        return report

    def _sweep(
        self,
        report: ConsistencyReport,
        old_orphans: list[tuple[str, int]],
        cutoff: float,
        grace_seconds: float,
    ) -> None:
        # Read the records again: a blob named since the listing began stays. A blob written
        # again since (the same bytes uploaded anew) is newer than the cutoff and stays too.
        named = self.integrity.referenced_digests()
        for digest, size in old_orphans:
            if digest not in named and self.blobs.delete(digest, older_than=cutoff):
                report.swept += 1
                report.swept_bytes += size
        report.temp_files_swept = self.blobs.delete_temp(cutoff)
        if report.swept or report.temp_files_swept:
            self.audit.record(
                "store.swept",
                f"blobs:{self.blobs.root}",
                {
                    "blobs": report.swept,
                    "bytes": report.swept_bytes,
                    "temp_files": report.temp_files_swept,
                    "grace_seconds": grace_seconds,
                },
            )
