"""The demo's federated act: five banks train one credit-risk model without pooling rows
(Flower, FedProx, SecAgg+), then again with silo-level differential privacy; both are
registered candidates, gated on each bank's held-out rows and on the privacy spent."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

MODEL = "credit-risk"
ROWS = 30_000


def train_across_banks(*, seed: int, console: Console) -> list[Any]:
    """Run the two jobs and gate them; skipped, with the reason, without the extra."""
    try:
        import flwr  # noqa: F401
    except ImportError:
        console.print(
            "[yellow]federated learning skipped[/]: pip install 'shipyard[federated]' "
            "(make test runs it in .venv-federated)"
        )
        return []
    import logging

    import pandas as pd

    import shipyard.federated as fl
    from shipyard.federated.synthetic import bank_silos
    from shipyard.sdk import context

    logging.getLogger("flwr").setLevel(logging.WARNING)
    silos = bank_silos(ROWS, 5, seed=seed)
    jobs = {
        "FedProx + SecAgg+": {
            "rounds": 20,
            "strategy": "fedprox",
            "proximal_mu": 0.01,
            "secure_aggregation": {"num_shares": 3, "reconstruction_threshold": 2},
        },
        "FedProx + SecAgg+ + DP": {
            "rounds": 6,
            "strategy": "fedprox",
            "proximal_mu": 0.01,
            "learning_rate": 0.1,
            "secure_aggregation": {"num_shares": 3, "reconstruction_threshold": 2},
            "dp": {
                "mode": "central-client-fixed",
                "noise_multiplier": 2.0,
                "clipping_norm": 1.0,
                "max_epsilon": 8,
            },
        },
    }
    gates = context.current().get_backend().gates
    evaluation = pd.concat(silos.values()).sample(2000, random_state=seed)
    policy = {
        "label": "default",
        "checks": [
            {"silos": {"min": 0.6, "max_gap": 0.15}},
            {"privacy": {"max_epsilon": 8}},
        ],
    }
    table = Table(title=f"{MODEL}: five banks, no rows pooled", header_style="bold")
    for column in ("job", "version", "ROC AUC", "worst bank", "privacy", "gate"):
        table.add_column(column)
    results = []
    for label, job in jobs.items():
        result = fl.train(
            silos,
            fl.load_config({"label": "default", **job}),
            register=MODEL,
            run_name=f"credit-risk {label}",
        )
        mv = result.model_version
        report = gates.evaluate(MODEL, mv.version, policy, evaluation)
        per_silo = result.report["final"]
        worst = min(per_silo, key=lambda s: per_silo[s]["roc_auc"])
        privacy = result.privacy
        table.add_row(
            label,
            str(mv.version),
            f"{result.global_metrics['roc_auc']:.4f}",
            f"{worst} {per_silo[worst]['roc_auc']:.4f}",
            f"ε {privacy['epsilon']:.2f}, δ {privacy['delta']:g}" if privacy else "no DP",
            "[green]passed[/]"
            if report.passed
            else "[red]failed[/]: " + "; ".join(c.name for c in report.checks if c.failed),
        )
        results.append(result)
    console.print(table)
    console.print(
        "silo-level DP with five banks: the noise on each round's mean (std 2.0 x clipping / 5 "
        "per weight) outweighs the signal, and the bank's gate says so; with no DP the "
        "privacy check refuses promotion. Neither reaches production without a decision."
    )
    console.print(
        "each round is a child run, each bank's data a sha256 in lineage: "
        f"shipyard models card {MODEL} 2, shipyard lineage models:/{MODEL}/2"
    )
    return results
