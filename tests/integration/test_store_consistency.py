"""Store and blob consistency after crashes: ``shipyard db check`` finds damage and sweeps
what an interrupted upload leaves, never a blob a record names or an upload in flight."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from shipyard.bootstrap import Backend, local_backend
from shipyard.core.settings import Settings
from tests.conftest import kill_9_after, store_env
from tests.e2e.test_cli import cli

DAY = 86_400


@pytest.fixture
def settings(store_settings: Settings) -> Settings:
    return store_settings


@pytest.fixture
def backend(store_backend: Backend) -> Backend:
    return store_backend


def _age(backend: Backend, digest: str, seconds: float) -> None:
    """Make a blob look written ``seconds`` ago."""
    path = Path(backend.blobs.root) / "sha256" / digest[:2] / digest[2:4] / digest  # type: ignore[union-attr]
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_orphans_are_swept_after_their_grace_and_named_blobs_never(
    backend: Backend, tmp_path: Path
) -> None:
    run = backend.tracking.create_run("consistency")
    kept = tmp_path / "kept.txt"
    kept.write_text("a record names me")
    record = backend.tracking.log_artifact(run.id, kept)
    assert backend.blobs is not None
    old = backend.blobs.put_chunks([b"uploaded, then the process died"]).digest
    young = backend.blobs.put_chunks([b"an upload still in flight"]).digest
    leftover = Path(backend.blobs.root) / "tmp" / "upload-crashed"
    leftover.write_bytes(b"half an upload")
    os.utime(leftover, (time.time() - 2 * DAY,) * 2)
    for digest in (old, record.digest):
        _age(backend, digest, 2 * DAY)

    report = backend.consistency.run()
    assert report.ok and report.orphans == 2 and report.young_orphans == 1
    assert report.swept == 0 and backend.blobs.exists(old)

    swept = backend.consistency.run(sweep=True, grace_seconds=DAY)
    assert (swept.swept, swept.temp_files_swept) == (1, 1)
    assert not backend.blobs.exists(old) and not leftover.exists()
    assert backend.blobs.exists(young) and backend.blobs.exists(record.digest)
    assert backend.tracking.read_artifact_bytes(run.id, "kept.txt") == b"a record names me"
    event = backend.governance.audit.events(action="store.swept")[-1]
    assert event.payload["blobs"] == 1


def test_uploading_bytes_already_stored_restarts_their_grace(backend: Backend) -> None:
    assert backend.blobs is not None
    digest = backend.blobs.put_chunks([b"same bytes"]).digest
    _age(backend, digest, 2 * DAY)
    backend.blobs.put_chunks([b"same bytes"])  # a new upload of them, record to follow
    assert backend.consistency.run(sweep=True, grace_seconds=DAY).swept == 0
    assert backend.blobs.exists(digest)


def test_a_missing_blob_is_damage_named_by_the_check(
    backend: Backend, settings: Settings, tmp_path: Path
) -> None:
    run = backend.tracking.create_run("consistency")
    lost = tmp_path / "lost.bin"
    lost.write_bytes(b"gone from the bucket")
    record = backend.tracking.log_artifact(run.id, lost)
    path = Path(settings.artifact_root) / "sha256" / record.digest[:2] / record.digest[2:4]
    (path / record.digest).unlink()

    done = cli("db", "check", "--json", env=store_env(settings))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["missing"] == [record.digest]
    assert report["audit_ok"] is True

    done = cli("db", "check", "--grace", "soon", env=store_env(settings))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    done = cli("db", "check", env={"SHIPYARD_URI": "http://127.0.0.1:9"})
    assert done.returncode == 2 and "not against a server" in done.stderr


UPLOADER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from shipyard.bootstrap import local_backend
    from shipyard.core.settings import Settings

    backend = local_backend(Settings())
    run = backend.tracking.create_run("crash")
    print(run.id, flush=True)
    source = Path(sys.argv[1])
    for i in range(100_000):
        source.write_bytes(os.urandom(200_000))
        backend.tracking.log_artifact(run.id, source, f"part-{i}.bin")
        print(i, flush=True)  # acknowledged
    """
)


def test_kill_9_during_uploads_leaves_a_consistent_store(
    settings: Settings, tmp_path: Path
) -> None:
    run_id, acknowledged = kill_9_after(
        UPLOADER, [str(tmp_path / "part.bin")], store_env(settings), 25
    )

    backend = local_backend(settings)
    try:
        report = backend.consistency.run(sweep=True, grace_seconds=0)
        assert report.ok, (report.database, report.missing, report.audit_reason)
        names = {a.name for a in backend.tracking.list_artifacts(run_id)}
        assert {f"part-{i}.bin" for i in range(acknowledged + 1)} <= names
        for name in sorted(names):
            assert len(backend.tracking.read_artifact_bytes(run_id, name)) == 200_000
        after = backend.consistency.run()
        assert after.ok and after.orphans == 0
    finally:
        backend.close()
