"""A scheduled pipeline for the scheduler tests."""

from __future__ import annotations

from shipyard import pipeline, step


@step
def count(n: int) -> int:
    return n * 2


@pipeline(schedule="0 * * * *", timezone="Europe/Paris")
def hourly(n: int = 3) -> object:
    return count(n)


@pipeline
def unscheduled(n: int = 3) -> object:
    return count(n)
