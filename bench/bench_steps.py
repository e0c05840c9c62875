"""Trivial steps for bench/pipeline_overhead.py (module level, so workers can import them)."""

from __future__ import annotations

from shipyard import pipeline, step


@step
def first(seed: int) -> int:
    return seed


@step
def increment(value: int) -> int:
    return value + 1


@pipeline
def chain(steps: int = 200) -> object:
    value = first(0)
    for _ in range(steps - 1):
        value = increment(value)
    return value
