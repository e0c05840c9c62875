"""`shipyard pipeline ...` and `shipyard lineage` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "sums.py"
    path.write_text(FLOW)
    return path


def test_run_show_list_and_cache_hits(flow: Path) -> None:
    first = cli("pipeline", "run", f"{flow}:sums", "-p", "n=5")
    assert first.returncode == 0, first.stderr
    assert "COMPLETED" in first.stdout
    second = cli("pipeline", "run", f"{flow}:sums", "-p", "n=5")
    assert "Using cached version of numbers" in second.stdout
    runs = json.loads(cli("pipeline", "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["COMPLETED", "COMPLETED"]
    shown = json.loads(cli("pipeline", "show", runs[0]["id"], "--json").stdout)
    assert [s["status"] for s in shown["steps"]] == ["CACHED", "CACHED"]
    listed = json.loads(cli("pipeline", "list", "--json").stdout)
    assert listed[0]["pipeline"] == "sums" and listed[0]["runs"] == 2
    digest = shown["steps"][1]["outputs"][0]["digest"]
    lineage = json.loads(cli("lineage", digest, "--json").stdout)
    assert lineage["upstream"]["children"], lineage


def test_failure_exits_1_and_resume_finishes(flow: Path) -> None:
    flag = flow.with_name("fail.flag")
    flag.write_text("x")
    failed = cli("pipeline", "run", f"{flow}:sums")
    assert failed.returncode == 1
    assert "told to fail" in failed.stdout
    run_id = json.loads(cli("pipeline", "runs", "--json").stdout)[0]["id"]
    trace = cli("pipeline", "show", run_id, "--traceback")
    assert "ValueError: told to fail" in trace.stdout
    flag.unlink()
    resumed = cli("pipeline", "resume", run_id, "--json")
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


def test_schedule_commands_and_one_scheduler_pass() -> None:
    target = str(Path(__file__).parents[1] / "resources" / "pipelines" / "scheduled.py")
    added = cli(
        "schedule", "add", "nightly", f"{target}:unscheduled", "--cron", "0 3 * * *", "-p", "n=4"
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli("schedule", "list", "--json").stdout)
    assert listed[0]["name"] == "nightly" and listed[0]["params"] == {"n": 4}
    assert cli("scheduler", "--once").returncode == 0  # created just now: nothing due yet
    assert json.loads(cli("schedule", "ticks", "nightly", "--json").stdout) == []
    assert (
        cli("schedule", "add", "bad", f"{target}:unscheduled", "--cron", "0 3 * *").returncode == 2
    )
    assert cli("schedule", "remove", "nightly").returncode == 0
    assert cli("schedule", "ticks", "nightly").returncode == 2
