"""The same job on a Flower deployment: a SuperLink, SuperNodes at the silos, ``flwr run``.

Shipyard writes the Flower app (a ``pyproject.toml`` naming
``shipyard.federated.flower:server_app`` and ``:client_app``), opens the job's run, submits
the app to the SuperLink with ``flwr run`` and registers what the ServerApp recorded. Each
silo runs ``shipyard federated silo`` (Flower's ``flower-supernode`` with its data file in
the node config); ``shipyard federated superlink`` starts Flower's SuperLink. Every Flower
process starts with its telemetry and update check off and, unless told otherwise, bound
to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from shipyard.core.errors import InvalidInputError
from shipyard.federated.config import FederatedConfig, check_silo_name
from shipyard.federated.service import FederatedResult, model_of, register_global, start
from shipyard.registry.card import FEDERATED_REPORT
from shipyard.tracking.models import RunStatus

FLOWER_LOG = "federated/flwr-run.log"
APP_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "shipyard-federated-job"
version = "1.0.0"
description = "A Shipyard federated job: Flower apps from shipyard.federated.flower"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "shipyard"

[tool.flwr.app.components]
serverapp = "shipyard.federated.flower:server_app"
clientapp = "shipyard.federated.flower:client_app"

[tool.flwr.app.config]
job = "{}"
shipyard-run = ""
silos = 2
"""


def flower_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every Flower process gets: telemetry and update checks off, and
    this interpreter's scripts first on PATH (a SuperNode starts ``flower-superexec``)."""
    env = dict(os.environ)
    env.update(FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1")
    # Flower's SuperExec looks for a new task once a second by default; each message of a
    # round waits for that look (its floor is 0.01 s).
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.05")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise InvalidInputError(
            f"{name} is not installed beside this Python: pip install 'shipyard[federated]'"
        )
    return str(path)


def superlink_command(host: str, port: int, database: str | None = None) -> list[str]:
    """Flower's SuperLink: Control, Fleet and ServerApp APIs on one HTTP port."""
    cmd = [_script("flower-superlink"), "--insecure", "--host", host, "--port", str(port)]
    if database:
        cmd += ["--database", database]
    return cmd


def supernode_command(
    superlink: str, silo: str, data: str | Path, host: str, port: int
) -> list[str]:
    """Flower's SuperNode for one silo; its data file travels in the node config only."""
    check_silo_name(silo)
    path = Path(data).resolve()
    if not path.is_file():
        raise InvalidInputError(f"silo data {path} does not exist")
    config = f"silo={json.dumps(silo)} data={json.dumps(str(path))}"
    return [
        _script("flower-supernode"),
        "--insecure",
        "--superlink",
        superlink,
        "--host",
        host,
        "--port",
        str(port),
        "--node-config",
        config,
    ]


def run(
    job: FederatedConfig,
    superlink: str,
    silos: int,
    *,
    register: str | None = None,
    experiment: str = "federated",
    run_name: str | None = None,
    timeout: float | None = None,
) -> FederatedResult:
    """Submit the job to the SuperLink at ``superlink`` (host:port), wait for it, and
    register the global model the ServerApp recorded."""
    if silos < job.min_silos:
        raise InvalidInputError(f"{silos} silo(s) expected; the job needs {job.min_silos}")
    job_run = start(job, silos, experiment, run_name)
    limit = timeout or (job.rounds * 2 + 2) * job.round_timeout
    with tempfile.TemporaryDirectory(prefix="shipyard-flwr-") as tmp:
        app, home = Path(tmp) / "app", Path(tmp) / "flwr"
        app.mkdir()
        home.mkdir()
        (app / "pyproject.toml").write_text(APP_PYPROJECT)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "shipyard"\n\n[superlink.shipyard]\n'
            f'address = "{superlink}"\ninsecure = true\n'
        )
        # A TOML file of overrides (TOML basic strings read JSON's escapes): the job travels
        # as one string value.
        overrides = Path(tmp) / "run-config.toml"
        overrides.write_text(
            f"job = {json.dumps(job.to_json())}\n"
            f"shipyard-run = {json.dumps(job_run.run_id)}\nsilos = {silos}\n"
        )
        try:
            done = subprocess.run(  # noqa: S603 - our own argv, no shell
                [
                    _script("flwr"),
                    "run",
                    str(app),
                    "shipyard",
                    "--run-config",
                    str(overrides),
                    "--stream",
                ],
                env=flower_env({"FLWR_HOME": str(home)}),
                capture_output=True,
                text=True,
                timeout=limit,
            )
        except subprocess.TimeoutExpired as exc:
            job_run.fail(f"flwr run did not finish within {limit:g} s")
            raise InvalidInputError(f"the federated run did not finish within {limit:g} s") from exc
    tracking = job_run.backend.tracking
    # Flower's own account of the run (the ServerApp's log), kept beside the report.
    tracking.log_bytes(job_run.run_id, (done.stdout + done.stderr).encode(), FLOWER_LOG)
    if not any(a.name == FEDERATED_REPORT for a in tracking.list_artifacts(job_run.run_id)):
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        job_run.fail(f"flwr run exited {done.returncode}: {tail}")
        recorded = tracking.get_run(job_run.run_id).tags.get("shipyard.federated.error")
        raise InvalidInputError(
            f"the federated run recorded no result ({recorded or tail or 'no output'})"
        )
    report = json.loads(tracking.read_artifact_bytes(job_run.run_id, FEDERATED_REPORT))
    result = FederatedResult(job_run.run_id, report, model_of(report))
    if register:
        result.model_version = register_global(result, register)
    tracking.end_run(job_run.run_id, RunStatus.FINISHED)
    return result


def wait_for(url: str, timeout: float = 60.0) -> None:
    """Until a Flower HTTP API answers (bounded)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise InvalidInputError(f"{url} did not answer within {timeout:g} s")
