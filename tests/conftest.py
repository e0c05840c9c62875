"""Shared fixtures: clean environment, seeds, stores (SQLite, PostgreSQL) and a live server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from shipyard.bootstrap import Backend, local_backend, rest_backend
from shipyard.core.settings import Settings

POSTGRES_URI = os.environ.get(
    "SHIPYARD_TEST_POSTGRES_URI", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# In CI the PostgreSQL suite must run: a missing server is an error there, not a skip.
POSTGRES_REQUIRED = os.environ.get("SHIPYARD_TEST_POSTGRES") == "required"

# Nothing a test starts may call out (Ray, MLflow and others send telemetry by default).
os.environ.update(
    RAY_USAGE_STATS_ENABLED="0",
    DO_NOT_TRACK="1",
    MLFLOW_DISABLE_TELEMETRY="true",
    FLWR_TELEMETRY_ENABLED="0",
    FLWR_DISABLE_UPDATE_CHECK="1",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SHIPYARD_* variable leaks into a test; each test runs in its own folder."""
    for key in list(os.environ):
        if key.startswith("SHIPYARD_") and not key.startswith("SHIPYARD_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def seed() -> int:
    """The seed tests use for synthetic data."""
    return 20261128


def _postgres_available() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_URI)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_reason() -> str | None:
    """None when PostgreSQL answers, else why not."""
    return _postgres_available()


@pytest.fixture
def postgres_uri(postgres_reason: str | None) -> Iterator[str]:
    """A URI whose connections use a fresh, empty schema, dropped after the test."""
    if postgres_reason is not None:
        if POSTGRES_REQUIRED:
            pytest.fail(
                f"PostgreSQL is required but unreachable at {POSTGRES_URI}: {postgres_reason}"
            )
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URI}: {postgres_reason}")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URI else "?"
    try:
        yield f"{POSTGRES_URI}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            # AutoML's Optuna studies live in a schema beside the store's own.
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}_optuna" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A private local Ray (num_cpus=2, 127.0.0.1, no usage statistics) for one module."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from shipyard.executors.ray_tasks import start_ray

    os.environ.pop("RAY_ADDRESS", None)
    # Ray sets RAY_AUTH_MODE=token in this process when it starts a local cluster, and the
    # cluster test sets it to disabled for a while: left set, a later start keeps Ray's
    # cached mode from the other setting and its own GCS refuses this driver.
    os.environ.pop("RAY_AUTH_MODE", None)
    start_ray(num_cpus=2)
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    yield
    ray.shutdown()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A real `shipyard server` process on 127.0.0.1, stopped by its PID."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        env.update({"SHIPYARD_URI": str(home), **(extra_env or {})})
        home.mkdir(parents=True, exist_ok=True)
        self.log = (home / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{(home / 'server.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become healthy within 30 s")

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


P = TypeVar("P", bound="ServerProcess")


def running(proc: P) -> Iterator[P]:
    """Hand out a started server process; stop it by its PID after."""
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A live server on a fresh embedded store."""
    yield from running(ServerProcess(tmp_path / "server-home"))


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The same services on each store: embedded SQLite, PostgreSQL, and a REST server with
    token auth (as its admin, as the in-process caller is)."""
    kind = request.param
    if kind == "sqlite":
        built = local_backend(Settings(uri=str(tmp_path / "store")))
    elif kind == "postgres":
        uri = request.getfixturevalue("postgres_uri")
        built = local_backend(Settings(uri=uri, artifacts=str(tmp_path / "blobs")))
    else:
        srv = request.getfixturevalue("token_server")
        built = rest_backend(Settings(uri=srv.url, token=srv.token))
    try:
        yield built
    finally:
        built.close()


def issue_tokens(settings: Settings, people: dict[str, str]) -> dict[str, str]:
    """Create each user (name -> role) on the store of ``settings``; their tokens by name."""
    from shipyard.core.actor import acting_as

    made = local_backend(settings)
    try:
        identity = made.governance.identity
        tokens = {}
        with acting_as("bootstrap"):
            for name, role in people.items():
                identity.create_user(name, role)
                tokens[name] = identity.create_token(name, "tests")[1]
        return tokens
    finally:
        made.close()


class TokenServer(ServerProcess):
    """A live server with ``--auth tokens`` and an admin's token (``token``)."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.token = issue_tokens(Settings(uri=str(home)), {"root": "admin"})["root"]
        super().__init__(home, {"SHIPYARD_AUTH": "tokens", **(extra_env or {})})


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    """A live server with token auth on a fresh embedded store; its admin's token."""
    yield from running(TokenServer(tmp_path / "server-home"))


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an embedded store on SQLite and on PostgreSQL (blobs and the audit
    anchor in this test's folder), for tests that also start processes on it."""
    if request.param == "sqlite":
        return Settings(uri=str(tmp_path / "store"))
    return Settings(
        uri=request.getfixturevalue("postgres_uri"),
        artifacts=str(tmp_path / "blobs"),
        audit_anchor=str(tmp_path / "anchor" / "audit-anchor.json"),
    )


@pytest.fixture
def store_backend(store_settings: Settings) -> Iterator[Backend]:
    """The local backend over ``store_settings``."""
    made = local_backend(store_settings)
    yield made
    made.close()


def store_env(settings: Settings) -> dict[str, str]:
    """The environment that points a child process at the store of ``settings``."""
    return {
        "SHIPYARD_URI": settings.uri,
        "SHIPYARD_ARTIFACTS": settings.artifact_root,
        "SHIPYARD_AUDIT_ANCHOR": str(settings.audit_anchor_path),
    }


def kill_9_after(
    script: str, args: list[str], env: dict[str, str], acknowledged: int
) -> tuple[str, int]:
    """Run ``script``, whose first line of output is a header and each later line the number
    of a write that returned; SIGKILL it once ``acknowledged`` writes have, a moment into
    the next. Returns the header and the last write acknowledged."""
    last = -1
    with subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            header = proc.stdout.readline().strip()
            for line in proc.stdout:
                last = int(line)
                if last >= acknowledged:
                    break
            time.sleep(0.05)  # land inside the next write
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
    assert last >= acknowledged, "the writer never got going"
    return header, last


MOTO_SERVER = Path(__file__).parents[1] / ".venv-moto" / "bin" / "moto_server"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server on 127.0.0.1: moto's standalone server, from its own
    environment (`make .venv-moto/.installed`). Skipped without it, an error in CI."""
    if not MOTO_SERVER.exists():
        reason = f"no moto server at {MOTO_SERVER} (make .venv-moto/.installed)"
        if os.environ.get("CI"):
            pytest.fail(f"the S3 suite cannot run in CI: {reason}")
        pytest.skip(reason)
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server, configured the way AWS tools expect it
    (``AWS_ENDPOINT_URL`` and credentials in the environment, so child processes see
    them too); returns an ``s3://bucket/prefix`` artifact root."""
    import uuid

    import s3fs

    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"shipyard-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/artifacts"
