"""`shipyard gate check` as CI runs it: exit codes, JUnit, HTML, JSON, GitHub annotations."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from tests.e2e.test_cli import cli
from tests.integration.test_gates import FAIR, make_data

pytestmark = pytest.mark.e2e

POLICY = """\
label: label
checks:
  - metric: roc_auc
    min: {auc_min}
  - fairness:
      sensitive: group
      reference: A
      favourable: 0
      adverse_impact_ratio_min: 0.8
  - data_validation: {{schema: training}}
  - drift: {{reference: training, method: psi, max: 0.2}}
"""


@pytest.fixture
def env(tmp_path: Path, seed: int) -> dict[str, str]:
    home = tmp_path / "store"
    shipyard.set_uri(str(home))
    train = make_data(3000, seed)
    model = LogisticRegression().fit(train[FAIR], train["label"])
    shipyard.register_model("credit", model, train[FAIR][:5], training_data=train[FAIR])
    shipyard.set_uri(None)
    make_data(2000, seed + 1).to_parquet(tmp_path / "eval.parquet")
    (tmp_path / "pass.yaml").write_text(POLICY.format(auc_min=0.7))
    (tmp_path / "fail.yaml").write_text(POLICY.format(auc_min=0.99))
    return {"SHIPYARD_URI": str(home)}


def test_passing_gate_exits_0_and_writes_reports(env: dict[str, str], tmp_path: Path) -> None:
    out = cli(
        "gate", "check", "credit", "1", "--policy", str(tmp_path / "pass.yaml"),
        "--data", str(tmp_path / "eval.parquet"), "--junit", str(tmp_path / "r.xml"),
        "--html", str(tmp_path / "r.html"), env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASSED" in out.stdout and "fairness:group" in out.stdout
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("4", "0")
    assert "Fairness by group" in (tmp_path / "r.html").read_text()
    listed = cli("gate", "reports", "credit", "--json", env=env)
    assert [r["passed"] for r in json.loads(listed.stdout)["reports"]] == [True]


def test_failing_gate_exits_1_with_github_annotations(env: dict[str, str], tmp_path: Path) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
              "GITHUB_OUTPUT": str(outputs)}  # fmt: skip
    out = cli(
        "gate", "check", "credit", "1", "--policy", str(tmp_path / "fail.yaml"),
        "--data", str(tmp_path / "eval.parquet"), "--json", env={**env, **github},
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    annotation = next(line for line in out.stdout.splitlines() if line.startswith("::error"))
    assert annotation.startswith("::error title=metric%3Aroc_auc::roc_auc = ")
    body = json.loads(out.stdout[out.stdout.index("{") :])
    assert body["passed"] is False and body["uri"] == "models:/credit/1"
    assert "❌ failed" in summary.read_text()
    assert "passed=false" in outputs.read_text()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--policy", "missing.yaml", "--data", "eval.parquet"), "cannot read gate policy"),
        (("--policy", "pass.yaml", "--data", "nothing.parquet"), "does not exist"),
        (("--policy", "eval.parquet", "--data", "eval.parquet"), "gate policy"),
    ],
)
def test_bad_gate_input_is_one_line_and_exit_2(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    full = [str(tmp_path / a) if a.endswith((".yaml", ".parquet")) else a for a in args]
    out = cli("gate", "check", "credit", "1", *full, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_the_policy_a_project_spec_attaches_to_the_model(
    env: dict[str, str], tmp_path: Path
) -> None:
    spec = tmp_path / "shipyard.yaml"
    spec.write_text(
        "apiVersion: shipyard.dev/v1\nkind: GatePolicy\nmetadata: {name: credit-gates}\n"
        "spec:\n  models: [credit]\n  label: label\n  checks: [{metric: roc_auc, min: 0.99}]\n"
    )
    assert cli("apply", "-f", str(spec), env=env).returncode == 0
    data = ("--data", str(tmp_path / "eval.parquet"))
    attached = cli("gate", "check", "credit", "1", *data, env=env)  # no --policy: the spec's
    assert attached.returncode == 1 and "roc_auc" in attached.stdout  # its 0.99 floor fails
    named = cli("gate", "check", "credit", "1", "--policy", "credit-gates", *data, env=env)
    assert named.returncode == 1
    unknown = cli("gate", "check", "credit", "1", "--policy", "nope", *data, env=env)
    assert (
        unknown.returncode == 2 and "no policy file or declared GatePolicy 'nope'" in unknown.stderr
    )
    other = cli("gate", "check", "other", "1", *data, env=env)
    assert other.returncode == 2 and "0 declared GatePolicy documents list model" in other.stderr
