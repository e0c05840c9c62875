"""`shipyard models ...` end to end: tables, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import shipyard
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "store"
    shipyard.set_uri(str(home))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    model = LogisticRegression(max_iter=500).fit(X, y)
    shipyard.register_model("credit", model, X[:5], description="PD model")
    shipyard.register_model("credit", model, X[:5])
    shipyard.set_uri(None)
    assert isinstance(X, pd.DataFrame)
    return {"SHIPYARD_URI": str(home)}


def test_models_commands(env: dict[str, str]) -> None:
    out = cli("models", "alias", "credit", "champion", "2", env=env)
    assert out.returncode == 2 and "break-glass: give a reason" in out.stderr
    out = cli("models", "alias", "credit", "champion", "2", "--reason", "first model", env=env)
    assert out.returncode == 0, out.stderr
    listed = json.loads(cli("models", "list", "--json", env=env).stdout)["models"]
    assert listed[0]["name"] == "credit" and listed[0]["aliases"] == {"champion": 2}
    shown = json.loads(cli("models", "show", "models:/credit@champion", "--json", env=env).stdout)
    assert shown["version"] == 2 and shown["aliases"] == ["champion"]
    versions = json.loads(cli("models", "versions", "credit", "--json", env=env).stdout)
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    assert "credit versions" in cli("models", "versions", "credit", env=env).stdout
    card = cli(
        "models", "card", "credit", "1", "--set", "considerations.limitations=Retail only; Not SMEs",
        env=env,
    )  # fmt: skip
    assert card.returncode == 0 and "- Not SMEs" in card.stdout
    assert cli("models", "state", "credit", "1", "approved", env=env).returncode == 0
    # No promotion around the approvals on a local store: production by hand is break-glass.
    bypass = cli("models", "state", "credit", "1", "production", env=env)
    assert bypass.returncode == 2 and "break-glass: give a reason" in bypass.stderr
    glass = ("models", "state", "credit", "1", "production", "--reason", "regulator deadline")
    assert cli(*glass, env=env).returncode == 0
    audit = cli("audit", "list", "--json", env=env).stdout
    assert "version.break_glass" in audit and "regulator deadline" in audit
    refused = cli("models", "delete-version", "credit", "2", env=env)
    assert refused.returncode == 2 and "holds aliases champion" in refused.stderr
    assert cli("models", "delete-version", "credit", "2", "--force", env=env).returncode == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("models", "show", "nope"), "'nope' does not exist"),
        (("models", "show", "models:/credit/9"), "has no version 9"),
        (("models", "alias", "credit", "1bad", "1"), "an alias starts with a letter"),
        (("models", "state", "credit", "1", "production"), "cannot become production"),
        (("models", "card", "credit", "1", "--set", "model_details.name=x"), "not editable"),
    ],
)
def test_models_bad_input_is_one_line_and_exit_2(
    env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    out = cli(*args, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
