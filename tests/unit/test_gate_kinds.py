"""Gate check kinds are registrations: each module of shipyard.gates.kinds is one, a
policy reads every registered kind, and reading a policy loads no data library."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.gates.kinds import CheckSpec, kinds
from shipyard.gates.policy import KINDS, parse_policy


def test_every_kind_module_is_registered_and_named_in_errors() -> None:
    assert KINDS == (
        "metric",
        "champion_challenger",
        "fairness",
        "data_validation",
        "drift",
        "privacy",
        "silos",
        "custom",
    )
    assert all(issubclass(spec, CheckSpec) for spec in kinds().values())
    with pytest.raises(InvalidInputError, match="unknown check 'shap'; known: metric, champ"):
        parse_policy({"label": "y", "checks": [{"shap": {}}]})
    policy = parse_policy(
        {
            "label": "y",
            "checks": [
                {"metric": "roc_auc", "min": 0.8},
                {"fairness": {"sensitive": ["age", "sex"]}},
                {"drift": {"method": "ks"}},
                {"privacy": {"max_epsilon": 8}},
                {"silos": {}},
                {"kind": "custom", "function": "m:f", "name": "named"},
            ],
        }
    )
    labels = [policy.check_name(i) for i in range(len(policy.checks))]
    assert labels == ["metric:roc_auc", "fairness:age,sex", "drift:ks", "privacy", "silos", "named"]


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reading_a_policy_loads_no_data_library() -> None:
    out = _python(
        """
        import sys
        from shipyard.gates.policy import load_policy, parse_policy
        parse_policy({"label": "y", "checks": [{"metric": "roc_auc", "min": 0.5},
                      {"fairness": {"sensitive": "band"}}, {"data_validation": {}}]})
        print(sorted(m for m in ("numpy", "pandas", "fairlearn", "pandera") if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


TOY = '''
"""max_rows: the evaluation data has at most ``max`` rows (a toy kind for the test)."""

from typing import ClassVar, Literal

from shipyard.gates.kinds._base import CheckSpec
from shipyard.gates.report import CheckResult


class MaxRowsCheck(CheckSpec):
    kind: Literal["max_rows"] = "max_rows"
    order: ClassVar[int] = 85
    max: int

    def label(self):
        return f"max_rows:{self.max}"

    def run(self, name, ctx):
        rows = len(ctx.data)
        ok = rows <= self.max
        return CheckResult(name, self.kind, "passed" if ok else "failed", f"{rows} rows",
                           rows, f"<= {self.max}")


CHECK = MaxRowsCheck
'''


def test_a_new_kind_is_one_module(tmp_path: Path) -> None:
    (tmp_path / "max_rows.py").write_text(textwrap.dedent(TOY))
    out = _python(
        f"""
        import json
        import numpy as np
        import pandas as pd
        import shipyard.gates.kinds as kinds
        kinds.__path__.append({str(tmp_path)!r})
        from shipyard.gates.checks import GateContext, Outputs, run_check
        from shipyard.gates.policy import KINDS, parse_policy
        policy = parse_policy({{"label": "y", "checks": [{{"max_rows": {{"max": 2}}}}]}})
        data = pd.DataFrame({{"y": [0, 1, 1]}})
        ctx = GateContext(policy, "m", 1, None, data, [], data["y"].to_numpy(),
                          Outputs(None, np.array([0, 1, 1])))
        result = run_check(0, ctx)
        print(json.dumps({{"kinds": list(KINDS), "name": result.name,
                           "status": result.status, "message": result.message}}))
        """
    )
    found = json.loads(out)
    assert found["kinds"][-2:] == ["max_rows", "custom"]
    assert found["name"] == "max_rows:2"
    assert found["status"] == "failed" and found["message"] == "3 rows"
