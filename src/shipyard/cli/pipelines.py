"""``shipyard pipeline run|list|runs|show|resume`` and ``shipyard lineage``."""

from __future__ import annotations

import uuid
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.tree import Tree

from shipyard.cli.errors import EXIT_CHECK_FAILED
from shipyard.cli.output import console, emit_json, table, when
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.models import PipelineRunRecord, PipelineStatus, StepStatus

app = typer.Typer(help="Pipelines: run, inspect and resume.", no_args_is_help=True)

_STYLE = {
    StepStatus.COMPLETED: "[green]done[/]",
    StepStatus.CACHED: "[cyan]cached[/]",
    StepStatus.FAILED: "[red]failed[/]",
    StepStatus.SKIPPED: "[yellow]skipped[/]",
    StepStatus.RUNNING: "[blue]running[/]",
    StepStatus.PENDING: "pending",
}


def load_target(target: str) -> Any:
    """Import ``path/to/file.py:func`` or ``package.module:func`` and return the pipeline."""
    from shipyard.pipelines.graph import PipelineDefinition
    from shipyard.pipelines.loader import import_target

    found = import_target(target)
    if not isinstance(found, PipelineDefinition):
        raise InvalidInputError(f"{target!r} is not a @pipeline (got {type(found).__name__})")
    return found


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"parameters are KEY=VALUE; got {item!r}")
        out[key.strip()] = value
    return out


def _run_live(definition: Any, run: Any, *, quiet: bool = False) -> PipelineRunRecord:
    if quiet:  # --json: nothing but the JSON document on stdout
        result: PipelineRunRecord = run(None)
        return result
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"pipeline {definition.name}", total=None)

        def on_event(step: str, status: StepStatus) -> None:
            if status is StepStatus.RUNNING:
                progress.update(task, description=f"{definition.name}: running {step}")
            else:
                if status is StepStatus.CACHED:
                    console.print(f"  [cyan]Using cached version of {step}[/]")
                else:
                    console.print(f"  {step}: {_STYLE[status]}")
                progress.advance(task)

        record: PipelineRunRecord = run(on_event)
    return record


@app.command("run")
def run(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="FILE.py:FUNCTION or MODULE:FUNCTION"),
    param: list[str] = typer.Option(None, "--param", "-p", help="KEY=VALUE (repeatable)."),
    executor: str = typer.Option("local", "--executor", help="local, processes or ray."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step again."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Run a pipeline; exit 1 if a step fails."""
    from shipyard.sdk.pipelines import runner

    state(ctx).backend  # noqa: B018 - fail early on a bad store before importing user code
    definition = load_target(target)
    active = runner()
    record = _run_live(
        definition,
        lambda on_event: active.run(
            definition,
            _params(param),
            executor=executor,
            cache=not no_cache,
            from_strings=True,
            on_event=on_event,
        ),
        quiet=as_json,
    )
    _finish(record, as_json)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="A failed pipeline run (prun_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Rerun a failed pipeline run from its failure, reusing the steps that finished."""
    from shipyard.sdk.pipelines import runner

    backend = state(ctx).backend
    active = runner()
    previous = active.store.get_pipeline_run(run_id)
    tags = backend.tracking.get_run(previous.run_id).tags if previous.run_id else {}
    definition = load_target(tags.get("shipyard.pipeline_target", ""))
    record = _run_live(
        definition,
        lambda on_event: active.resume(definition, run_id, on_event=on_event),
        quiet=as_json,
    )
    _finish(record, as_json)


def _finish(record: PipelineRunRecord, as_json: bool) -> None:
    if as_json:
        emit_json(record)
    else:
        _show(record)
    if record.status is PipelineStatus.FAILED:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _show(record: PipelineRunRecord) -> None:
    tree = Tree(f"[bold]{record.pipeline}[/] {record.id} - {record.status.value}")
    for step in record.steps:
        seconds = (
            f"{(step.ended_at - step.started_at) / 1000:.2f}s"
            if step.ended_at and step.started_at
            else "-"
        )
        branch = tree.add(f"{step.step}: {_STYLE[step.status]} {seconds}")
        for out in step.outputs:
            branch.add(
                f"[dim]{out.name}: {out.materializer} {out.size} B sha256:{out.digest[:12]}[/]"
            )
        if step.error:
            branch.add(f"[red]{step.error.strip().splitlines()[-1]}[/]")
    console.print(tree)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Pipeline run id (prun_...)."),
    traceback: bool = typer.Option(
        False, "--traceback", help="Print the failing step's traceback."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a pipeline run as a tree: status, duration, cache hits, outputs."""
    from shipyard.sdk.pipelines import runner

    state(ctx).backend  # noqa: B018
    record = runner().store.get_pipeline_run(run_id)
    if as_json:
        emit_json(record)
        return
    _show(record)
    if traceback:
        for step in record.steps:
            if step.error and step.status is StepStatus.FAILED:
                console.print(step.error, highlight=False, markup=False)


@app.command("list")
def list_pipelines(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List pipelines that have run."""
    from shipyard.sdk.pipelines import runner

    state(ctx).backend  # noqa: B018
    rows = runner().store.list_pipelines()
    if as_json:
        emit_json([{"pipeline": n, "runs": c, "last_started": s} for n, c, s in rows])
        return
    table("Pipelines", ["name", "runs", "last run"], [(n, c, when(s)) for n, c, s in rows])


@app.command("runs")
def list_runs(
    ctx: typer.Context,
    pipeline: str = typer.Option(None, "--pipeline", help="Only this pipeline."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List pipeline runs, newest first."""
    from shipyard.sdk.pipelines import runner

    state(ctx).backend  # noqa: B018
    found = runner().store.list_pipeline_runs(pipeline, limit)
    if as_json:
        emit_json(found)
        return
    table(
        "Pipeline runs",
        ["id", "pipeline", "status", "started", "executor"],
        [(r.id, r.pipeline, r.status, when(r.started_at), r.executor) for r in found],
    )


def lineage(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., help="models:/NAME/VERSION (or @alias), run_..., prun_..., srun_..., or a sha256."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the graph as JSON."),
) -> None:
    """Show what a model version, artifact or run was made from (upstream) and what used it
    (downstream); ``models:/fraud/3`` covers data, pipeline and step runs, code, gates,
    approvals and deployments."""
    from shipyard.pipelines.lineage import lineage_tree
    from shipyard.sdk.pipelines import runner

    backend = state(ctx).backend
    if target.startswith("models:/"):
        from shipyard.governance.lineage import model_lineage

        gov = backend.governance
        found = model_lineage(
            backend.registry,
            backend.gates,
            gov.approvals,
            backend.pipelines.store if backend.pipelines else None,
            target,
        )
        if as_json:
            emit_json(found.graph())
            return
        for title, tree_root in (
            ("upstream (made from)", found.upstream),
            ("downstream (led to)", found.downstream),
        ):
            tree = Tree(f"[bold]{found.node}[/] {title}")
            _grow(tree, tree_root)
            console.print(tree)
        return
    node = _node(target)
    store = runner().store
    up = lineage_tree(store, node, "upstream")
    down = lineage_tree(store, node, "downstream")
    if not up.children and not down.children:
        raise InvalidInputError(f"no lineage recorded for {target!r}")
    if as_json:
        emit_json({"node": node, "upstream": up.to_dict(), "downstream": down.to_dict()})
        return
    for title, tree_root in (("upstream (made from)", up), ("downstream (used by)", down)):
        tree = Tree(f"[bold]{node}[/] {title}")
        _grow(tree, tree_root)
        console.print(tree)


def _grow(tree: Tree, node: Any) -> None:
    for child in node.children:
        _grow(tree.add(f"{child.node} [dim]({child.relation})[/]"), child)


def _node(target: str) -> str:
    prefixes = {"run_": "run", "prun_": "pipeline_run", "srun_": "step_run"}
    for prefix, kind in prefixes.items():
        if target.startswith(prefix):
            return f"{kind}:{target}"
    digest = target.removeprefix("sha256:").removeprefix("artifact:")
    if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
        return f"artifact:{digest}"
    if ":" in target:
        return target
    try:  # an OpenLineage runId, as another tool (Airflow, Spark) sent it
        return f"job_run:{uuid.UUID(target)}"
    except ValueError:
        pass
    raise InvalidInputError(
        f"lineage takes a run_, prun_ or srun_ id, an OpenLineage run UUID, an artifact "
        f"sha256, or a node such as dataset:<namespace>/<name>; got {target!r}"
    )
