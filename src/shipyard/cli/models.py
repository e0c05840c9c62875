"""``shipyard models list|show|versions|alias|state|card|delete-version``"""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console, emit_json, result, table, when
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError

app = typer.Typer(help="Model registry: models, versions, aliases, cards.", no_args_is_help=True)


@app.command("list")
def list_models(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """Registered models with their latest version and aliases."""
    models = state(ctx).backend.registry.list_models()
    if as_json:
        emit_json({"models": models})
        return
    table(
        "Models",
        ["name", "latest", "aliases", "updated", "description"],
        [
            (
                m.name,
                m.latest_version,
                ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
                when(m.updated_at),
                m.description[:60],
            )
            for m in models
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name, or a models:/ URI."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A model, or one version when given models:/NAME/VERSION or models:/NAME@ALIAS."""
    registry = state(ctx).backend.registry
    if name.startswith("models:/") and ("@" in name or name.count("/") > 1):
        mv = registry.resolve(name)
        if as_json:
            emit_json(mv)
            return
        table(
            f"{mv.name} version {mv.version}",
            ["field", "value"],
            [
                ("state", mv.state),
                ("aliases", ", ".join(mv.aliases)),
                ("flavors", ", ".join(mv.flavors)),
                ("source", mv.source_uri),
                ("created", f"{when(mv.created_at)} by {mv.created_by}"),
                ("description", mv.description),
                ("files", ", ".join(sorted(mv.files))),
                ("python", mv.environment.get("python")),
                ("tags", ", ".join(f"{k}={v}" for k, v in mv.tags.items())),
            ],
        )
        return
    model = registry.get_model(name.removeprefix("models:/"))
    if as_json:
        emit_json(model)
        return
    table(
        model.name,
        ["field", "value"],
        [
            ("latest version", model.latest_version),
            ("aliases", ", ".join(f"{a}→{v}" for a, v in sorted(model.aliases.items()))),
            ("description", model.description),
            ("tags", ", ".join(f"{k}={v}" for k, v in model.tags.items())),
            ("updated", when(model.updated_at)),
        ],
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    include_deleted: bool = typer.Option(False, "--deleted", help="Show deleted versions too."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Versions of a model, newest first."""
    found = state(ctx).backend.registry.list_versions(name, include_deleted)
    if as_json:
        emit_json({"versions": found})
        return
    table(
        f"{name} versions",
        ["version", "state", "aliases", "flavors", "run", "created", "by"],
        [
            (
                f"{v.version}{' (deleted)' if v.deleted else ''}",
                v.state,
                ", ".join(v.aliases),
                ", ".join(v.flavors),
                v.run_id,
                when(v.created_at),
                v.created_by,
            )
            for v in found
        ],
    )


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="e.g. champion."),
    version: int = typer.Argument(None, help="Version to point at (omit with --delete)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    reason: str = typer.Option(
        None, "--reason", help="Why: required to move champion by hand (admin break-glass)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Point an alias at a version (moving it), or remove it with --delete."""
    registry = state(ctx).backend.registry
    if delete:
        registry.delete_alias(name, alias_name, reason=reason)
        result(
            {"model": name, "alias": alias_name, "deleted": True},
            as_json,
            f"removed alias {alias_name} of {name}",
        )
        return
    if version is None:
        raise InvalidInputError("give the VERSION to point the alias at, or --delete")
    mv = registry.set_alias(name, alias_name, version, reason=reason)
    result(mv, as_json, f"{name}@{alias_name} → version {mv.version}")


@app.command("state")
def set_state(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version."),
    new_state: str = typer.Argument(
        ..., metavar="STATE", help="candidate, approved, production or retired."
    ),
    reason: str = typer.Option(
        None, "--reason", help="Why: required to set production by hand (admin break-glass)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Move a version along its lifecycle (production: through approvals, or break-glass)."""
    mv = state(ctx).backend.registry.transition(name, version, new_state, reason=reason)
    result(mv, as_json, f"{name} version {mv.version} is now {mv.state}")


@app.command("card")
def card(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version."),
    set_: list[str] = typer.Option(
        None,
        "--set",
        help="Edit a field: section.field=value (lists: separate items with ';'), e.g. "
        "considerations.limitations='Not for credit decisions'.",
    ),
    fmt_: str = typer.Option(
        "md", "--format", help="md, html, json (Model Card Toolkit 0.0.2) or raw (as stored)."
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """Show (and optionally edit) a version's model card."""
    from shipyard.registry.card import to_html, to_markdown, to_mct

    registry = state(ctx).backend.registry
    if set_:
        changes: dict[str, object] = {}
        for item in set_:
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidInputError(f"--set takes section.field=value; got {item!r}")
            listy = key.split(".", 1)[-1] in (
                "owners", "users", "use_cases", "limitations", "tradeoffs",
                "ethical_considerations", "references",
            )  # fmt: skip
            changes[key] = [v.strip() for v in value.split(";") if v.strip()] if listy else value
        mv = registry.edit_card(name, version, changes)
    else:
        mv = registry.get_version(name, version)
    if fmt_ not in ("md", "html", "json", "raw"):
        raise InvalidInputError(f"--format must be md, html, json or raw; got {fmt_!r}")
    if fmt_ in ("json", "raw"):
        import json

        text = json.dumps(to_mct(mv.card) if fmt_ == "json" else mv.card, indent=2, default=str)
    else:
        text = to_markdown(mv.card) if fmt_ == "md" else to_html(mv.card)
    if output is not None:
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        typer.echo(text)


@app.command("delete-version")
def delete_version(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version."),
    force: bool = typer.Option(
        False, "--force", help="Also when it holds aliases or is in production."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete a version (its files stay with its run; its aliases are removed)."""
    state(ctx).backend.registry.delete_version(name, version, force=force)
    result(
        {"model": name, "version": version, "deleted": True},
        as_json,
        f"deleted {name} version {version}",
    )
