"""``shipyard db upgrade``"""

from __future__ import annotations

import typer

from shipyard.cli.output import console
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
