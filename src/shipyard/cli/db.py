"""``shipyard db upgrade|check``"""

from __future__ import annotations

import typer

from shipyard.cli.output import console, emit_json
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError

app = typer.Typer(help="The metadata database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Migrate the store's schema to the newest revision (also done on first use)."""
    from shipyard.store.engine import describe, make_engine
    from shipyard.store.migrate import upgrade as run_upgrade

    settings = state(ctx).settings
    if settings.backend_kind == "http":
        raise InvalidInputError("db upgrade runs against a database, not a server URI")
    engine = make_engine(settings.store_uri)
    try:
        before, after = run_upgrade(engine)
    finally:
        engine.dispose()
    where = describe(engine)
    if before == after:
        console.print(f"{where}: already at {after}")
    else:
        console.print(f"{where}: upgraded {before or '<empty>'} -> {after}")


@app.command("check")
def check(
    ctx: typer.Context,
    sweep: bool = typer.Option(
        False, "--sweep", help="Delete orphan blobs (and upload leftovers) older than --grace."
    ),
    grace: str = typer.Option(
        "24h", "--grace", help="Orphans younger than this may be uploads in flight: kept."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check the database, the audit chain and the blobs against each other (exit 1 on damage).

    Run it after a crash or a restore: records naming missing blobs are damage, blobs no
    record names are orphans that a crash between upload and record leaves behind.
    """
    from dataclasses import asdict

    from shipyard.governance.identity import parse_duration

    grace_seconds = parse_duration(grace) / 1000
    if state(ctx).settings.backend_kind == "http":
        raise InvalidInputError(
            "db check runs where the database and the blobs are, not against a server URI"
        )
    backend = state(ctx).backend
    report = backend.consistency.run(sweep=sweep, grace_seconds=grace_seconds)
    if as_json:
        emit_json({**asdict(report), "ok": report.ok})
    else:
        for line in report.database:
            console.print(f"[red]database:[/red] {line}")
        chain = "verifies" if report.audit_ok else f"[red]broken[/red]: {report.audit_reason}"
        console.print(f"audit chain {chain}")
        console.print(
            f"{report.blobs} blobs stored, {report.referenced} named by records, "
            f"{len(report.missing)} missing"
        )
        for digest in report.missing[:20]:
            console.print(f"[red]missing blob[/red] {digest}")
        console.print(
            f"{report.orphans} orphans ({report.orphan_bytes} bytes; "
            f"{report.young_orphans} younger than {grace})"
        )
        if sweep:
            console.print(
                f"swept {report.swept} orphans ({report.swept_bytes} bytes) and "
                f"{report.temp_files_swept} upload leftovers"
            )
        console.print("[green]consistent[/green]" if report.ok else "[red]damaged[/red]")
    if not report.ok:
        raise typer.Exit(1)
