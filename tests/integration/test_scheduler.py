"""The scheduler against a real store: missed ticks recorded, one run per tick, no overlap."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import shipyard
from shipyard.core.errors import InvalidInputError
from shipyard.core.ids import new_id
from shipyard.pipelines.models import PipelineStatus
from shipyard.pipelines.scheduler import Scheduler
from shipyard.pipelines.schedules import Schedule, TickStatus, to_ms
from shipyard.sdk.scheduling import add_schedule, schedule_store, scheduler
from tests.conftest import TokenServer

TARGET = str(Path(__file__).parents[1] / "resources" / "pipelines" / "scheduled.py")


@pytest.fixture(autouse=True, params=["sqlite", "postgres", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The embedded store, PostgreSQL, and a live server the schedules and ticks live on."""
    if request.param == "sqlite":
        uri = str(tmp_path / "store")
        shipyard.set_uri(uri)
        yield uri
    elif request.param == "postgres":
        request.getfixturevalue("monkeypatch").setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "b"))
        uri = request.getfixturevalue("postgres_uri")
        shipyard.set_uri(uri)
        yield uri
    else:
        server = TokenServer(tmp_path / "server-home")  # token auth, as its admin
        request.getfixturevalue("monkeypatch").setenv("SHIPYARD_TOKEN", server.token)
        shipyard.set_uri(server.url)
        try:
            yield server.url
        finally:
            server.stop()
    shipyard.set_uri(None)


def backdate(name: str, hours: int) -> None:
    store = schedule_store()
    s = store.get_schedule(name)
    # Half past the hour, `hours` hours ago: exactly `hours` hourly ticks are due now,
    # whatever the minute this test runs at.
    top = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    created = to_ms(top - timedelta(hours=hours) + timedelta(minutes=30))
    store.delete_schedule(name)
    store.save_schedule(Schedule(s.name, s.target, s.cron, s.timezone, s.params, True, created))


def test_add_uses_the_pipeline_schedule_and_checks_params() -> None:
    saved = add_schedule("h", f"{TARGET}:hourly", params={"n": "5"}, from_strings=True)
    assert (saved.cron, saved.timezone, saved.params) == ("0 * * * *", "Europe/Paris", {"n": 5})
    with pytest.raises(InvalidInputError, match="declares no schedule"):
        add_schedule("u", f"{TARGET}:unscheduled")
    with pytest.raises(InvalidInputError, match="cron"):
        add_schedule("u", f"{TARGET}:unscheduled", cron="every hour")
    with pytest.raises(InvalidInputError, match="must be int"):
        add_schedule("h2", f"{TARGET}:hourly", params={"n": "many"}, from_strings=True)


def test_missed_ticks_are_recorded_and_only_the_newest_runs() -> None:
    add_schedule("h", f"{TARGET}:hourly")
    backdate("h", 3)
    recorded = scheduler().run_pending()
    assert [t.status for t in recorded] == [
        TickStatus.MISSED,
        TickStatus.MISSED,
        TickStatus.COMPLETED,
    ]
    assert scheduler().run_pending() == []  # nothing new is due
    ticks = schedule_store().list_ticks("h", 10)
    assert [t.status for t in ticks] == [TickStatus.COMPLETED, TickStatus.MISSED, TickStatus.MISSED]
    run_id = ticks[0].pipeline_run_id
    assert run_id is not None
    tracked = shipyard.search_runs("hourly", "tags.`shipyard.schedule` = 'h'").runs
    assert len(tracked) == 1 and "shipyard.nominal_time" in tracked[0].tags


def test_a_tick_is_claimed_once_and_never_overlaps_a_running_one() -> None:
    add_schedule("h", f"{TARGET}:hourly")
    store = schedule_store()
    now = to_ms(datetime.now(tz=UTC))
    long_ago = now - 10**9
    assert store.claim_tick("h", 1000, long_ago) is TickStatus.STARTED
    assert store.claim_tick("h", 1000, long_ago) is None  # a second scheduler loses the race
    assert store.claim_tick("h", 2000, long_ago) is TickStatus.SKIPPED  # the first still runs
    store.finish_tick("h", 1000, TickStatus.COMPLETED, None, None)
    assert store.claim_tick("h", 3000, long_ago) is TickStatus.STARTED


def test_a_failing_pipeline_marks_its_tick_failed() -> None:
    add_schedule("h", f"{TARGET}:hourly")
    backdate("h", 1)

    def broken(schedule: Schedule, nominal: datetime) -> tuple[str, PipelineStatus]:
        return new_id("prun"), PipelineStatus.FAILED

    recorded = Scheduler(schedule_store(), broken).run_pending()
    assert recorded[-1].status is TickStatus.FAILED


def test_two_schedulers_at_once_run_each_tick_once(store: str) -> None:
    """Two schedulers (two clients of the store or the server) race for the same due tick:
    one runs it, the other records nothing."""
    from concurrent.futures import ThreadPoolExecutor

    from shipyard.bootstrap import build_backend
    from shipyard.core.settings import Settings

    add_schedule("h", f"{TARGET}:hourly")
    backdate("h", 1)
    started: list[str] = []

    def run(schedule: Schedule, nominal: datetime) -> tuple[str, PipelineStatus]:
        started.append(schedule.name)
        return new_id("prun"), PipelineStatus.COMPLETED

    backends = [build_backend(Settings(uri=store)) for _ in range(2)]
    try:
        schedulers = [Scheduler(b.pipelines.schedules, run) for b in backends]  # type: ignore[union-attr]
        with ThreadPoolExecutor(2) as pool:
            passes = list(pool.map(lambda s: s.run_pending(), schedulers))
    finally:
        for backend in backends:
            backend.close()
    assert started == ["h"]
    assert sorted(len(p) for p in passes) == [0, 1]
    assert [t.status for t in schedule_store().list_ticks("h", 10)] == [TickStatus.COMPLETED]
