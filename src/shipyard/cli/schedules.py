"""``shipyard schedule add|list|remove|ticks`` and ``shipyard scheduler``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer

from shipyard.cli.output import console, emit_json, table, when
from shipyard.cli.pipelines import _params
from shipyard.cli.state import state

app = typer.Typer(help="Schedules: run pipelines on cron.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Schedule name."),
    target: str = typer.Argument(..., help="FILE.py:FUNCTION or MODULE:FUNCTION"),
    cron: str = typer.Option(None, "--cron", help="5-field cron; default: the @pipeline's."),
    timezone: str = typer.Option(None, "--timezone", help="IANA zone, e.g. Europe/Paris."),
    param: list[str] = typer.Option(None, "--param", "-p", help="KEY=VALUE (repeatable)."),
    executor: str = typer.Option("local", "--executor", help="local, processes or ray."),
) -> None:
    """Register a pipeline to run on a schedule (replaces one of the same name)."""
    from shipyard.sdk.scheduling import add_schedule

    state(ctx).backend  # noqa: B018 - fail early on a bad store
    saved = add_schedule(
        name,
        target,
        cron=cron,
        timezone=timezone,
        params=_params(param),
        from_strings=True,
        executor=executor,
    )
    console.print(f"schedule {saved.name}: {saved.cron} ({saved.timezone}) -> {saved.target}")


@app.command("list")
def list_schedules(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List schedules with their next due time."""
    from shipyard.pipelines.schedules import next_tick
    from shipyard.sdk.scheduling import schedule_store

    state(ctx).backend  # noqa: B018
    found = schedule_store().list_schedules()
    now = datetime.now(tz=UTC)
    if as_json:
        emit_json(
            [
                {
                    "name": s.name,
                    "cron": s.cron,
                    "timezone": s.timezone,
                    "target": s.target,
                    "params": s.params,
                    "enabled": s.enabled,
                    "last_tick_at": s.last_tick_at,
                    "next": next_tick(s, now).isoformat(),
                }
                for s in found
            ]
        )
        return
    table(
        "Schedules",
        ["name", "cron", "zone", "next", "last tick", "target"],
        [
            (
                s.name,
                s.cron,
                s.timezone,
                next_tick(s, now).isoformat(timespec="minutes"),
                when(s.last_tick_at),
                s.target,
            )
            for s in found
        ],
    )


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="Schedule name.")) -> None:
    """Remove a schedule (its tick history stays)."""
    from shipyard.sdk.scheduling import schedule_store

    state(ctx).backend  # noqa: B018
    schedule_store().delete_schedule(name)
    console.print(f"removed schedule {name}")


@app.command("ticks")
def ticks(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Schedule name."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What became of each due moment: completed, failed, missed or skipped."""
    from shipyard.sdk.scheduling import schedule_store

    state(ctx).backend  # noqa: B018
    store = schedule_store()
    store.get_schedule(name)
    found = store.list_ticks(name, limit)
    if as_json:
        emit_json(found)
        return
    table(
        f"Ticks of {name}",
        ["nominal time", "status", "pipeline run", "note"],
        [(when(k.nominal_time), k.status, k.pipeline_run_id, k.note) for k in found],
    )


def scheduler(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between passes."),
) -> None:
    """Start due pipeline runs; record missed and skipped ticks. Stop with Ctrl-C."""
    from shipyard.sdk.scheduling import scheduler as make_scheduler

    state(ctx).backend  # noqa: B018
    active = make_scheduler()
    while True:
        for tick in active.run_pending():
            console.print(
                f"{tick.schedule} @ {when(tick.nominal_time)}: {tick.status.value}"
                + (f" ({tick.pipeline_run_id})" if tick.pipeline_run_id else "")
            )
        if once:
            return
        time.sleep(interval)
