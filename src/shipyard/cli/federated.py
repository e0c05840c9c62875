"""``shipyard federated run``: train across silos on Flower, tracked and registered."""

from __future__ import annotations

import logging
from typing import Any

import typer

from shipyard.cli.output import console, emit_json, table
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError

app = typer.Typer(
    help="Federated learning across data silos on Flower (the federated extra).",
    no_args_is_help=True,
)


def _silos(values: list[str]) -> dict[str, str]:
    silos: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError(f"--silo takes NAME=PATH; got {value!r}")
        if name in silos:
            raise InvalidInputError(f"silo {name!r} is given twice")
        silos[name] = path
    return silos


@app.command("run")
def run(
    ctx: typer.Context,
    silo: list[str] = typer.Option(
        ..., "--silo", "-s", help="NAME=PATH.parquet|csv of one silo (repeat per silo)."
    ),
    config: str | None = typer.Option(
        None, "--config", "-c", help="The job (YAML: strategy, rounds, dp, secure_aggregation)."
    ),
    label: str | None = typer.Option(None, "--label", "-l", help="The 0/1 label column."),
    strategy: str | None = typer.Option(None, "--strategy", help="fedavg or fedprox."),
    rounds: int | None = typer.Option(None, "--rounds", "-r"),
    register: str | None = typer.Option(
        None, "--register", help="Register the global model as a candidate of this model."
    ),
    experiment: str = typer.Option("federated", "--experiment", "-e"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train one global model across SILOs without moving their rows (one process: each
    silo behind its own Flower ClientApp)."""
    from shipyard.federated import load_config, train
    from shipyard.sdk import context

    context.replace(state(ctx).settings)
    job = load_config(config or {}, label=label, strategy=strategy, rounds=rounds)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    if as_json:
        result = train(_silos(silo), job, register=register, experiment=experiment)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rounds"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("federated rounds", total=job.rounds)

            def advance(entry: dict[str, Any]) -> None:
                auc = entry.get("global", {}).get("roc_auc")
                bar.update(
                    task,
                    advance=1,
                    description=f"round {entry['round']}: ROC AUC {auc:.4f}" if auc else "round",
                )

            result = train(
                _silos(silo), job, register=register, experiment=experiment, on_round=advance
            )
    summary = {
        "run_id": result.run_id,
        "global": result.global_metrics,
        "per_silo": result.report["final"],
        "privacy": result.privacy,
        "privacy_statement": result.report["privacy_statement"],
        "rounds": len(result.report["rounds"]),
        "silos": {n: s["fingerprint"]["sha256"] for n, s in result.report["silos"].items()},
    }
    if result.model_version is not None:
        mv = result.model_version
        summary["model_version"] = {"name": mv.name, "version": mv.version, "state": mv.state.value}
    if as_json:
        emit_json(summary)
        return
    table(
        "Global model on each silo's held-out rows",
        ["silo", "data sha256", "ROC AUC", "log loss", "selection rate", "TPR", "FPR"],
        [
            [
                name,
                sha[:16],
                m.get("roc_auc"),
                m.get("log_loss"),
                m.get("selection_rate"),
                m.get("true_positive_rate"),
                m.get("false_positive_rate"),
            ]
            for name, sha in summary["silos"].items()
            for m in [summary["per_silo"].get(name, {})]
        ],
    )
    g = summary["global"]
    console.print(
        f"global ROC AUC {g.get('roc_auc', float('nan')):.4f} after {summary['rounds']} rounds; "
        f"run {result.run_id}",
        highlight=False,
    )
    console.print(summary["privacy_statement"], highlight=False)
    if "model_version" in summary:
        mv = summary["model_version"]
        console.print(f"registered {mv['name']} version {mv['version']} ({mv['state']})")
