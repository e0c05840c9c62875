"""The real MLflow client against a real `shipyard server` (--auth tokens).

MLflow lives in an environment of its own (about 1 GiB): ``make test`` builds
``.venv-mlflow``; ``SHIPYARD_TEST_MLFLOW_PYTHON`` names another interpreter that has it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.bootstrap import Backend, local_backend
from shipyard.core.actor import acting_as
from shipyard.core.settings import Settings
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("client.py")
#: Nothing the client runs may call out.
QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
}


def _interpreter() -> Path:
    named = os.environ.get("SHIPYARD_TEST_MLFLOW_PYTHON")
    return Path(named) if named else ROOT / ".venv-mlflow" / "bin" / "python"


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """An interpreter with the real mlflow package; skip without one, fail in CI."""
    python = _interpreter()
    if not python.exists():
        reason = f"no MLflow environment at {python} (make .venv-mlflow/.installed)"
        if os.environ.get("CI"):
            pytest.fail(f"the MLflow compatibility suite cannot run in CI: {reason}")
        pytest.skip(reason)
    return python


@dataclass
class Site:
    """A token-auth server with a member, another member, an approver and a viewer."""

    url: str
    home: Path
    tokens: dict[str, str]
    python: Path

    def client(self, scenario: str, user: str | None, **env: str) -> dict[str, Any]:
        """Run one scenario of client.py as ``user`` (no token when None)."""
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))
        }
        environ.update(QUIET)
        environ.update(env)
        if user is not None:
            environ["MLFLOW_TRACKING_TOKEN"] = self.tokens[user]
        done = subprocess.run(
            [str(self.python), str(CLIENT), scenario, self.url],
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def backend(self) -> Backend:
        """Shipyard's own view of the same store."""
        return local_backend(Settings(uri=str(self.home)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mlflow_python: Path) -> Iterator[Site]:
    """Users and tokens in a fresh store, served with token auth."""
    home = tmp_path_factory.mktemp("mlflow-site") / ".shipyard"
    backend = local_backend(Settings(uri=str(home)))
    try:
        identity = backend.governance.identity
        tokens = {}
        with acting_as("admin"):
            for name, role in (
                ("mia", "member"),
                ("max", "member"),
                ("ada", "approver"),
                ("vic", "viewer"),
            ):
                identity.create_user(name, role)
                tokens[name] = identity.create_token(name, "mlflow-test")[1]
    finally:
        backend.close()
    server = ServerProcess(home, {"SHIPYARD_AUTH": "tokens"})
    try:
        yield Site(server.url, home, tokens, mlflow_python)
    finally:
        server.stop()
