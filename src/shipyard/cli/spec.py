"""``shipyard plan|apply|drift|export`` and ``shipyard spec schema|set``: the project spec.

``plan`` and ``drift`` exit like ``terraform plan -detailed-exitcode``: 0 nothing to do,
2 changes pending (or drift found), 1 an error (an invalid spec lists every problem with its
line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import yaml

from shipyard.cli.errors import exit_code
from shipyard.cli.output import console, emit_json, err_console
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError, ShipyardError

EXIT_PENDING = 2
EXIT_ERROR = 1
SPEC_FILE = typer.Option(Path("shipyard.yaml"), "--file", "-f", help="The spec file.")
ENVIRONMENT = typer.Option(None, "--env", "-e", help="Apply this Environment's patches.")
PRUNE = typer.Option(
    False, "--prune", help="Delete what an earlier apply made and the spec no longer declares."
)
AS_JSON = typer.Option(False, "--json", help="Print JSON.")

spec_app = typer.Typer(
    help="The project spec: its JSON Schema, and hand edits.", no_args_is_help=True
)

_SYMBOL = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


@contextmanager
def _errors_exit(code: int | None = EXIT_ERROR) -> Iterator[None]:
    """Errors end the command with one line each and ``code`` (terraform's 1 for plan)."""
    from shipyard.spec.loader import SpecError

    try:
        yield
    except SpecError as exc:
        for line in exc.errors:
            err_console.print(f"error: {line}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    except ShipyardError as exc:
        listed = getattr(exc, "errors", None)  # a spec error sent back by a server
        if isinstance(listed, list) and listed:
            for line in listed:
                err_console.print(f"error: {line}", markup=False, highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(code if code is not None else exit_code(exc)) from None


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _print_plan(plan: Any) -> None:
    for change in plan.changes:
        symbol, colour = _SYMBOL[change.action]
        key = f"{change.kind}/{change.name}"
        note = f" [dim]({plan.drifted[key]})[/dim]" if key in plan.drifted else ""
        console.print(f"[{colour}]{symbol} {key}[/{colour}]{note}", highlight=False)
        for item in change.fields:
            if change.action == "create":
                line = f"    + {item.path} = {_value(item.new)}"
            elif change.action == "delete":
                line = f"    - {item.path} = {_value(item.old)}"
            else:
                line = f"    ~ {item.path}: {_value(item.old)} -> {_value(item.new)}"
            console.print(f"[{colour}]{line}[/{colour}]", markup=True, highlight=False)
        if change.problem:
            console.print(f"    [red]! {change.problem}[/red]", highlight=False)
    for kind, name in plan.unmanaged:
        console.print(
            f"[dim]  {kind}/{name}: not in the spec, made by hand (see shipyard drift)[/dim]"
        )
    console.print(
        f"Plan: {plan.count('create')} to add, {plan.count('update')} to change, "
        f"{plan.count('delete')} to destroy ({plan.unchanged} unchanged)."
        if plan.changes
        else f"No changes. The store matches the spec ({plan.unchanged} objects)."
    )


def plan(
    ctx: typer.Context,
    file: Path = SPEC_FILE,
    env: str | None = ENVIRONMENT,
    prune: bool = PRUNE,
    as_json: bool = AS_JSON,
) -> None:
    """Show what apply would change, object by object and field by field."""
    from shipyard.spec.loader import load_spec

    with _errors_exit():
        docs = load_spec(file, env)
        found = state(ctx).backend.spec.plan(docs, prune=prune)
    if as_json:
        emit_json(found.to_dict())
    else:
        _print_plan(found)
    if found.problems:
        raise typer.Exit(EXIT_ERROR)
    if found.changes:
        raise typer.Exit(EXIT_PENDING)


def apply(
    ctx: typer.Context,
    file: Path = SPEC_FILE,
    env: str | None = ENVIRONMENT,
    prune: bool = PRUNE,
    as_json: bool = AS_JSON,
) -> None:
    """Make every change in one transaction (all or nothing), each one audited."""
    from shipyard.spec.loader import load_spec

    with _errors_exit(code=None):
        docs = load_spec(file, env)
        done = state(ctx).backend.spec.apply(docs, prune=prune)
    if as_json:
        emit_json(done.to_dict())
        return
    _print_plan(done)
    if done.changes:
        console.print(
            f"Apply complete: {done.count('create')} added, {done.count('update')} changed, "
            f"{done.count('delete')} destroyed."
        )


def drift(ctx: typer.Context, as_json: bool = AS_JSON) -> None:
    """Report what changed outside the spec since the last apply, by whom and when."""
    with _errors_exit():
        found = state(ctx).backend.spec.drift()
    if as_json:
        emit_json({"drift": [d.to_dict() for d in found]})
    else:
        for item in found:
            when = (
                datetime.fromtimestamp(item.at / 1000, UTC).isoformat(timespec="seconds")
                if item.at
                else "unknown"
            )
            who = ", ".join(item.by) or "unknown (not in the audit log)"
            console.print(
                f"[yellow]~ {item.kind}/{item.name}: {item.change} outside the spec by {who} "
                f"at {when}[/yellow]",
                highlight=False,
            )
            for f in item.fields:
                console.print(
                    f"    {f.path}: applied {_value(f.old)}, now {_value(f.new)}", highlight=False
                )
        if not found:
            console.print("No drift: the store is as the last apply left it.")
    if found:
        raise typer.Exit(EXIT_PENDING)


def export(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (default: stdout)."
    ),
) -> None:
    """Write the live state as a spec (apply it to an empty store to get the same)."""
    from shipyard.spec.loader import dump_spec

    with _errors_exit(code=None):
        text = dump_spec(state(ctx).backend.spec.export())
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"spec written to {output}")


@spec_app.command("schema")
def schema(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (default: stdout)."
    ),
) -> None:
    """The JSON Schema of a spec document, for editors (yaml-language-server and others)."""
    from shipyard.spec.documents import document_schema

    text = json.dumps(document_schema(), indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"schema written to {output}")


@spec_app.command("set")
def set_fields(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="KIND/NAME, e.g. Monitor/fraud-daily."),
    changes: list[str] = typer.Argument(
        ..., help="FIELD=VALUE (YAML value), e.g. drift.drift_share=0.3"
    ),
) -> None:
    """Change a declared object by hand (a hot fix): audited, and drift until applied."""
    kind, sep, name = target.partition("/")
    if not sep or not name:
        raise InvalidInputError(f"expected KIND/NAME, got {target!r}")
    parsed: dict[str, Any] = {}
    for item in changes:
        path, eq, raw = item.partition("=")
        if not eq or not path:
            raise InvalidInputError(f"expected FIELD=VALUE, got {item!r}")
        try:
            parsed[path] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise InvalidInputError(f"{path}: {raw!r} is not a YAML value") from None
    state(ctx).backend.spec.edit(kind, name, parsed)
    console.print(f"{kind}/{name} changed: {', '.join(sorted(parsed))}")
