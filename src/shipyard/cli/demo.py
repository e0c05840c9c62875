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
    automl_budget: float = typer.Option(
        30.0, "--automl-budget", min=2, max=3600, help="Seconds for the AutoML search."
    ),
) -> None:
    """Walk the lifecycle on a synthetic card-fraud data set (embedded store by default)."""
    from shipyard.demo.workflow import run_demo

    run_demo(state(ctx).settings, rows=rows, seed=seed, automl_budget=automl_budget)
