"""Pipeline overhead per step: a 200-step pipeline of trivial steps, uncached and then fully
cached, on each executor, against calling the same functions directly (the floor) and
against Prefect 3 flows with the same tasks when Prefect is installed.

    .venv-bench/bin/python bench/pipeline_overhead.py [--steps 200]

Goal (issue 3): under 20 ms per uncached step and under 5 ms per cached step on `local`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import report

sys.path.insert(0, str(Path(__file__).parent))

import bench_steps  # module-level steps, importable by worker processes


def direct(steps: int) -> float:
    started = time.perf_counter()
    value = bench_steps.first.fn(0)
    for _ in range(steps - 1):
        value = bench_steps.increment.fn(value)
    assert value == steps - 1
    return time.perf_counter() - started


def shipyard_run(steps: int, executor: str, cache: bool) -> tuple[float, str]:
    started = time.perf_counter()
    run = bench_steps.chain.run(steps=steps, executor=executor, cache=cache)
    elapsed = time.perf_counter() - started
    statuses = {s.status.value for s in run.record.steps}
    return elapsed, ",".join(sorted(statuses))


def prefect_run(steps: int) -> float | None:
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
    # Prefect 3 starts an ephemeral API server (SQLite + migrations); give it time here.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    try:
        from prefect import flow, task
    except ImportError:
        return None

    @task
    def first(seed: int) -> int:
        return seed

    @task
    def increment(value: int) -> int:
        return value + 1

    @flow
    def chain(steps: int) -> int:
        value = first(0)
        for _ in range(steps - 1):
            value = increment(value)
        return value

    chain(steps=2)  # warm up Prefect's own start-up
    started = time.perf_counter()
    chain(steps=steps)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--no-processes", action="store_true")
    args = parser.parse_args()
    import shipyard

    shipyard.set_uri(str(Path(tempfile.mkdtemp(prefix="shipyard-pipe-")) / "store"))
    floor = direct(args.steps)
    bench_steps.chain.run(steps=3)  # warm imports and the store
    rows = [("direct calls (floor)", f"{floor * 1000 / args.steps:.3f} ms/step")]
    executors = ["local"] if args.no_processes else ["local", "processes"]
    try:
        import ray  # noqa: F401 - only to know whether the ray extra is there
    except ImportError:
        pass
    else:
        if not args.no_processes:
            executors.append("ray")
    for executor in executors:
        uncached, s1 = shipyard_run(args.steps, executor, cache=False)
        cached, s2 = shipyard_run(args.steps, executor, cache=True)
        cached_again, s3 = shipyard_run(args.steps, executor, cache=True)
        assert s3 == "CACHED", s3
        rows += [
            (
                f"shipyard {executor}, uncached ({s1})",
                f"{(uncached - floor) * 1000 / args.steps:.2f} ms/step overhead",
            ),
            (
                f"shipyard {executor}, fully cached",
                f"{(cached_again - floor) * 1000 / args.steps:.2f} ms/step overhead",
            ),
        ]
        del cached, s2
    try:
        prefect = prefect_run(args.steps)
    except RuntimeError as exc:
        prefect = None
        rows.append(("prefect 3 flow", f"could not start: {exc}"))
    if prefect is None and not any(r[0].startswith("prefect") for r in rows):
        rows.append(("prefect 3 flow", "not installed (pip install 'prefect>=3' in the bench env)"))
    else:
        rows.append(
            (
                "prefect 3 flow, same tasks",
                f"{(prefect - floor) * 1000 / args.steps:.2f} ms/step overhead",
            )
        )
    report(
        f"{args.steps}-step chain of trivial steps (goal: < 20 ms uncached, < 5 ms cached, local)",
        rows,
    )


if __name__ == "__main__":
    main()
