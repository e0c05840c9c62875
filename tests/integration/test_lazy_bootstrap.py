"""Logging a metric loads tracking only: the registry, gates (pandas) and monitoring wait."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
import shipyard
with shipyard.start_run(experiment="lazy") as run:
    shipyard.log_metric("loss", 0.5)
before = {m: m in sys.modules for m in HEAVY}
shipyard.model_registry()  # first use builds it
after = {m: m in sys.modules for m in HEAVY}
print(json.dumps({"before": before, "after": after}))
"""
HEAVY = [
    "pandas",
    "shipyard.gates.service",
    "shipyard.registry.service",
    "shipyard.monitoring.service",
]


def test_logging_a_metric_imports_no_registry_gates_or_pandas(tmp_path: Path) -> None:
    code = f"HEAVY = {HEAVY!r}\n" + SCRIPT
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"SHIPYARD_URI": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(found["before"].values()), found["before"]
    assert found["after"]["shipyard.registry.service"] is True
