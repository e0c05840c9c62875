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
        [], "--silo", "-s", help="NAME=PATH.parquet|csv of one silo (repeat per silo)."
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
    superlink: str | None = typer.Option(
        None,
        "--superlink",
        help="HOST:PORT of a Flower SuperLink: run on its SuperNodes instead of in process.",
    ),
    silos: int | None = typer.Option(
        None, "--silos", help="With --superlink: how many silos (SuperNodes) to wait for."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train one global model across silos without moving their rows: --silo NAME=PATH for
    each silo in one process (each behind its own Flower ClientApp), or --superlink for a
    Flower deployment whose SuperNodes hold the data."""
    from shipyard.federated import load_config, train
    from shipyard.sdk import context

    context.replace(state(ctx).settings)
    job = load_config(config or {}, label=label, strategy=strategy, rounds=rounds)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    if superlink is not None:
        from shipyard.federated.deployment import run as run_deployed

        if silo:
            raise InvalidInputError("--silo is for one process; SuperNodes hold the data")
        result = run_deployed(
            job, superlink, silos or job.min_silos, register=register, experiment=experiment
        )
        _report(result, as_json)
        return
    if not silo:
        raise InvalidInputError("give --silo NAME=PATH for each silo, or --superlink HOST:PORT")
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
    _report(result, as_json)


def _report(result: Any, as_json: bool) -> None:
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


@app.command("superlink")
def superlink(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(9091, "--port", help="Flower's Control, Fleet and ServerApp API."),
    database: str | None = typer.Option(None, "--database", help="SuperLink state file."),
) -> None:
    """Start Flower's SuperLink (the coordinator's side), telemetry off; runs until stopped.
    Its ServerApp records into this Shipyard (the same SHIPYARD_* settings)."""
    import os

    from shipyard.federated.deployment import flower_env, superlink_command

    cmd = superlink_command(host, port, database)
    os.execve(cmd[0], cmd, flower_env())  # noqa: S606 - Flower's own entry point


@app.command("silo")
def silo_node(
    superlink: str = typer.Option(..., "--superlink", help="HOST:PORT of the SuperLink."),
    name: str = typer.Option(..., "--name", help="This silo's name (letters, digits, . _ -)."),
    data: str = typer.Option(..., "--data", help="This silo's Parquet or CSV file."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address of this node's own API."),
    port: int = typer.Option(9094, "--port", help="Port of this node's own API."),
) -> None:
    """Start Flower's SuperNode for one silo, telemetry off; its rows stay on this machine
    (only the file's path travels, in the node config). Runs until stopped."""
    import os

    from shipyard.federated.deployment import flower_env, supernode_command

    cmd = supernode_command(superlink, name, data, host, port)
    os.execve(cmd[0], cmd, flower_env())  # noqa: S606 - Flower's own entry point
