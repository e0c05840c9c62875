"""`shipyard pipeline ...` and `shipyard lineage` as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TokenServer
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.e2e

FLOW = """
from pathlib import Path
from shipyard import pipeline, step

FLAG = Path(__file__).with_name("fail.flag")

@step
def numbers(n: int) -> list:
    return list(range(n))

@step
def total(values: list) -> int:
    if FLAG.exists():
        raise ValueError("told to fail")
    return sum(values)

@pipeline
def sums(n: int = 10):
    return total(numbers(n))
"""


@pytest.fixture(params=["local", "rest"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The CLI on this folder's store, or through a token-auth server (as its admin)."""
    if request.param == "local":
        yield {}
        return
    server = TokenServer(tmp_path / "server-home")
    try:
        yield {"SHIPYARD_URI": server.url, "SHIPYARD_TOKEN": server.token}
    finally:
        server.stop()


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "sums.py"
    path.write_text(FLOW)
    return path


def test_run_show_list_and_cache_hits(flow: Path, where: dict[str, str]) -> None:
    first = cli("pipeline", "run", f"{flow}:sums", "-p", "n=5", env=where)
    assert first.returncode == 0, first.stderr
    assert "COMPLETED" in first.stdout
    second = cli("pipeline", "run", f"{flow}:sums", "-p", "n=5", env=where)
    assert "Using cached version of numbers" in second.stdout
    runs = json.loads(cli("pipeline", "runs", "--json", env=where).stdout)
    assert [r["status"] for r in runs] == ["COMPLETED", "COMPLETED"]
    shown = json.loads(cli("pipeline", "show", runs[0]["id"], "--json", env=where).stdout)
    assert [s["status"] for s in shown["steps"]] == ["CACHED", "CACHED"]
    listed = json.loads(cli("pipeline", "list", "--json", env=where).stdout)
    assert listed[0]["pipeline"] == "sums" and listed[0]["runs"] == 2
    digest = shown["steps"][1]["outputs"][0]["digest"]
    lineage = json.loads(cli("lineage", digest, "--json", env=where).stdout)
    assert lineage["upstream"]["children"], lineage


def test_failure_exits_1_and_resume_finishes(flow: Path, where: dict[str, str]) -> None:
    flag = flow.with_name("fail.flag")
    flag.write_text("x")
    failed = cli("pipeline", "run", f"{flow}:sums", env=where)
    assert failed.returncode == 1
    assert "told to fail" in failed.stdout
    run_id = json.loads(cli("pipeline", "runs", "--json", env=where).stdout)[0]["id"]
    trace = cli("pipeline", "show", run_id, "--traceback", env=where)
    assert "ValueError: told to fail" in trace.stdout
    flag.unlink()
    resumed = cli("pipeline", "resume", run_id, "--json", env=where)
    assert resumed.returncode == 0, resumed.stderr
    steps = {s["step"]: s["status"] for s in json.loads(resumed.stdout)["steps"]}
    assert steps == {"numbers": "CACHED", "total": "COMPLETED"}


@pytest.mark.parametrize(
    "args",
    [
        ("pipeline", "run", "nope.py:sums"),
        ("pipeline", "run", "sums"),
        ("pipeline", "run", "{flow}:numbers"),
        ("pipeline", "run", "{flow}:sums", "-p", "n=lots"),
        ("pipeline", "run", "{flow}:sums", "-p", "m=1"),
        ("pipeline", "run", "{flow}:sums", "--executor", "spark"),
        ("pipeline", "show", "prun_01m8j07665dv9xfct2x23tvv6b"),
        ("lineage", "not-a-thing"),
    ],
)
def test_bad_input_exits_2(flow: Path, args: tuple[str, ...]) -> None:
    done = cli(*[a.format(flow=flow) for a in args])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.strip()


def test_schedule_commands_and_one_scheduler_pass(where: dict[str, str]) -> None:
    target = str(Path(__file__).parents[1] / "resources" / "pipelines" / "scheduled.py")
    nightly = ("nightly", f"{target}:unscheduled", "--cron", "0 3 * * *", "-p", "n=4")
    added = cli("schedule", "add", *nightly, env=where)
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli("schedule", "list", "--json", env=where).stdout)
    assert listed[0]["name"] == "nightly" and listed[0]["params"] == {"n": 4}
    assert (
        cli("scheduler", "--once", env=where).returncode == 0
    )  # created just now: nothing due yet
    assert json.loads(cli("schedule", "ticks", "nightly", "--json", env=where).stdout) == []
    bad = ("bad", f"{target}:unscheduled", "--cron", "0 3 * *")
    assert cli("schedule", "add", *bad, env=where).returncode == 2
    assert cli("schedule", "remove", "nightly", env=where).returncode == 0
    assert cli("schedule", "ticks", "nightly", env=where).returncode == 2
