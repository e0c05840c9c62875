from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.schedules import Schedule, check_cron, due_ticks, next_tick, to_ms


def schedule(
    cron: str, created: datetime, zone: str = "UTC", last: datetime | None = None
) -> Schedule:
    return Schedule(
        "s", "f.py:p", cron, zone, {}, True, to_ms(created), to_ms(last) if last else None
    )


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/15 * * * *", "0 0 1 * MON"])
def test_valid_cron(cron: str) -> None:
    check_cron(cron, "Europe/Paris")


@pytest.mark.parametrize(
    ("cron", "zone"),
    [("61 * * * *", "UTC"), ("0 3 * *", "UTC"), ("@daily", "UTC"), ("0 3 * * *", "Mars/Olympus")],
)
def test_invalid_cron_or_zone(cron: str, zone: str) -> None:
    with pytest.raises(InvalidInputError):
        check_cron(cron, zone)


def test_due_ticks_since_creation_oldest_first() -> None:
    now = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
    ticks = due_ticks(schedule("0 * * * *", now - timedelta(hours=3)), now)
    assert [t.hour for t in ticks] == [10, 11, 12]
    assert due_ticks(schedule("0 * * * *", now - timedelta(hours=3), last=ticks[-1]), now) == []


def test_ticks_follow_the_time_zone_across_dst() -> None:
    # Paris leaves summer time on 2026-10-25: 03:00 local is 02:00 UTC, then 01:00 UTC.
    created = datetime(2026, 10, 23, 12, 0, tzinfo=UTC)
    now = datetime(2026, 10, 26, 12, 0, tzinfo=UTC)
    ticks = due_ticks(schedule("0 3 * * *", created, "Europe/Paris"), now)
    assert [t.hour for t in ticks] == [3, 3, 3]
    assert {t.astimezone(UTC).hour for t in ticks} == {1, 2}


def test_next_tick() -> None:
    now = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
    assert next_tick(schedule("0 3 * * *", now), now) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
