"""``shipyard demo``"""

from __future__ import annotations

import typer

from shipyard.cli.state import state


def demo(
    ctx: typer.Context,
    rows: int = typer.Option(
        50_000, "--rows", min=1000, max=5_000_000, help="Transactions to generate."
    ),
    seed: int = typer.Option(7, "--seed", help="Random seed."),
) -> None:
    """Walk the lifecycle on a synthetic card-fraud data set (embedded store by default)."""
    from shipyard.demo.workflow import run_demo

    run_demo(state(ctx).settings, rows=rows, seed=seed)
