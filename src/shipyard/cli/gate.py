"""``shipyard gate check|reports``: quality gates for CI (exit 1 when a check fails)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from shipyard.cli.errors import EXIT_CHECK_FAILED
from shipyard.cli.output import console, emit_json, table, when
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError
from shipyard.gates.policy import GatePolicy, load_policy, parse_policy
from shipyard.gates.render import to_html, to_junit, to_markdown
from shipyard.gates.report import GateReport
from shipyard.sdk.gates import read_frame

app = typer.Typer(
    help="Quality gates: evaluate a model version against a policy.", no_args_is_help=True
)

_STYLE = {"passed": "green", "failed": "bold red", "skipped": "yellow"}


def _policy(backend: Any, model: str, given: str | None) -> GatePolicy:
    """A policy file, a declared GatePolicy by name, or the declared one that lists the model."""
    if given is not None and (given.endswith((".yaml", ".yml")) or Path(given).is_file()):
        return load_policy(given)
    declared = {
        name: body for (kind, name), body in backend.spec.live().items() if kind == "GatePolicy"
    }
    if given is not None:
        if given not in declared:
            raise InvalidInputError(f"no policy file or declared GatePolicy {given!r}")
        chosen = declared[given]
    else:
        found = [b for b in declared.values() if model in b.get("models", [])]
        if len(found) != 1:
            raise InvalidInputError(
                f"give --policy: {len(found)} declared GatePolicy documents list model {model!r}"
            )
        chosen = found[0]
    return parse_policy({k: v for k, v in chosen.items() if k != "models"})


@app.command("check")
def check(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version number."),
    policy: str | None = typer.Option(
        None,
        "--policy",
        "-p",
        help="Gate policy: a YAML file or a declared GatePolicy (default: the one the project "
        "spec attaches to this model).",
    ),
    data: Path = typer.Option(..., "--data", "-d", help="Evaluation data (.parquet, .csv)."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Training data (default: the one registered with the model)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML report here."),
    trusted: bool = typer.Option(False, "--trusted", help="Allow pickled Python models."),
) -> None:
    """Evaluate, store the report on the version, print it; exit 1 when a check fails."""
    st = state(ctx)
    rules = _policy(st.backend, name, policy)
    frame = read_frame(data, "evaluation data")
    ref = read_frame(reference, "reference data") if reference is not None else None
    with console.status(f"evaluating {len(rules.checks)} checks on {len(frame):,} rows"):
        report = st.backend.gates.evaluate(
            name, version, rules, frame, reference=ref, trusted=trusted
        )
    if junit is not None:
        junit.write_text(to_junit(report), encoding="utf-8")
    if html is not None:
        html.write_text(to_html(report), encoding="utf-8")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _github(report)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print(report)
    if not report.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("reports")
def reports(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: int | None = typer.Argument(None, help="Only this version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stored gate reports, newest first."""
    found = state(ctx).backend.gates.reports(name, version)
    if as_json:
        emit_json({"reports": [r.to_dict() for r in found]})
        return
    table(
        f"Gate reports of {name}",
        ["id", "version", "passed", "failed checks", "rows", "by", "when"],
        [
            (
                r.id,
                r.version,
                r.passed,
                ", ".join(c.name for c in r.failed_checks),
                r.rows,
                r.created_by,
                when(r.created_at),
            )
            for r in found
        ],
    )


def _print(report: GateReport) -> None:
    table(
        f"Gates: {report.model} v{report.version}, {report.rows:,} rows, {report.seconds:.1f} s",
        ["check", "status", "value", "threshold", "detail"],
        [
            (
                c.name,
                f"[{_STYLE[c.status]}]{c.status}[/]",
                "" if c.value is None else f"{c.value:.4g}",
                c.threshold,
                c.message,
            )
            for c in report.checks
        ],
    )
    verdict = "[green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    console.print(f"{verdict}  report {report.id}")


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _github(report: GateReport) -> None:
    """GitHub Actions: an ::error per failed check, a job summary, step outputs."""
    for c in report.failed_checks:
        print(f"::error title={_escape(c.name, prop=True)}::{_escape(c.message)}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(to_markdown(report))
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as fh:
            fh.write(f"passed={str(report.passed).lower()}\nreport_id={report.id}\n")
