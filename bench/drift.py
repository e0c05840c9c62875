"""Drift on 1,000,000 rows x 20 columns (15 numeric, 5 categorical with about 10 levels),
reference and current, drift injected in some columns: Shipyard's drift check against
Evidently's data drift preset (same tests: Wasserstein for numbers, Jensen-Shannon for
categories, chosen automatically by both), each in its own process so time and peak memory
are its own, plus a NumPy floor (one pass over every column). Per-column verdicts must agree.

    .venv-bench/bin/python bench/drift.py [--rows 1000000]

Evidently runs from .venv-evidently (evidently 0.7 needs pandas < 3: `make .venv-evidently`).
Goal (issue 6): at least 50x faster than Evidently end to end, peak memory no larger.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from _common import report

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY = ROOT / ".venv-evidently" / "bin" / "python"
NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
LEVELS = [f"level_{i}" for i in range(10)]


def make(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        values = (
            rng.normal(loc=i, scale=1 + i / 10, size=rows) if i % 3 else rng.lognormal(1, 0.5, rows)
        )
        if drift and name == "n1":
            values = values + 0.4 * (1 + i / 10)  # a shift
        if drift and name == "n4":
            values = values * 1.5  # a wider spread
        if drift and name == "n7":
            values = values + 0.02  # too small to count
        data[name] = values
    for name in CATEGORICAL:
        p = np.linspace(1, 2, len(LEVELS))
        if drift and name == "c0":
            p = p[::-1] ** 3  # shares move
        data[name] = rng.choice(LEVELS, rows, p=p / p.sum())
    if drift:
        cats = np.asarray(data["c1"]).copy()
        cats[rng.random(rows) < 0.15] = "level_new"  # a category never seen
        data["c1"] = cats
    return pd.DataFrame(data)


SHIPYARD = textwrap.dedent("""
    import json, resource, sys, time
    import pandas as pd
    import scipy.spatial.distance, scipy.stats  # imported before timing, as Evidently's are
    from shipyard.drift.engine import PreparedReference
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t0 = time.perf_counter(); prepared = PreparedReference.of(ref)
    t1 = time.perf_counter(); result = prepared.compare(cur)
    t2 = time.perf_counter()
    print(json.dumps({"prepare": t1 - t0, "check": t2 - t1, "total": t2 - t0,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "columns": {c.column: [c.method, c.statistic, c.drifted] for c in result.columns}}))
""")

EVIDENTLY_RUN = textwrap.dedent("""
    import json, resource, sys, time, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    from evidently.legacy.report import Report
    from evidently.legacy.metric_preset import DataDriftPreset
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t0 = time.perf_counter()
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur)
    result = report.as_dict()
    t1 = time.perf_counter()
    table = next(m["result"] for m in result["metrics"] if "drift_by_columns" in m["result"])
    print(json.dumps({"total": t1 - t0,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "columns": {c: [v["stattest_name"], v["drift_score"], v["drift_detected"]]
                    for c, v in table["drift_by_columns"].items()}}))
""")


def run(python: Path | str, script: str, *paths: Path) -> dict:
    env = {**os.environ, "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([str(python), "-c", script, *map(str, paths)], capture_output=True,
                         text=True, env=env, timeout=1800, check=False)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{python} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor(cur: pd.DataFrame) -> float:
    import time

    started = time.perf_counter()
    for name in NUMERIC:
        np.add.reduce(cur[name].to_numpy())
    for name in CATEGORICAL:
        cur[name].value_counts()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
    make(args.rows, 1, False).to_parquet(ref_path)
    current = make(args.rows, 2, True)
    current.to_parquet(cur_path)
    ours = run(sys.executable, SHIPYARD, ref_path, cur_path)
    rows = [
        ("shipyard: prepare reference (once)", f"{ours['prepare']:8.2f} s"),
        ("shipyard: check a window", f"{ours['check']:8.2f} s"),
        ("shipyard: end to end", f"{ours['total']:8.2f} s, peak RSS {ours['rss_mib']:.0f} MiB"),
        ("numpy floor (one pass)", f"{floor(current):8.2f} s"),
    ]
    if EVIDENTLY.exists():
        theirs = run(EVIDENTLY, EVIDENTLY_RUN, ref_path, cur_path)
        agree = [c for c in ours["columns"] if ours["columns"][c][2] == theirs["columns"][c][2]]
        differ = sorted(set(ours["columns"]) - set(agree))
        rows += [
            ("evidently DataDriftPreset", f"{theirs['total']:8.2f} s, peak RSS {theirs['rss_mib']:.0f} MiB"),
            ("speed-up end to end", f"{theirs['total'] / ours['total']:8.1f}x (goal >= 50x)"),
            ("speed-up per window", f"{theirs['total'] / ours['check']:8.1f}x"),
            ("peak memory ratio", f"{ours['rss_mib'] / theirs['rss_mib']:8.2f} (goal <= 1)"),
            ("verdicts agree", f"{len(agree)}/{len(ours['columns'])}" + (f" (differ: {differ})" if differ else "")),
        ]  # fmt: skip
        for column in sorted(ours["columns"], key=lambda c: (c[0], int(c[1:]))):
            m1, s1, d1 = ours["columns"][column]
            m2, s2, d2 = theirs["columns"][column]
            rows.append((f"  {column}", f"{m1} {s1:.4f} {'DRIFT' if d1 else 'ok'} | {m2} {s2:.4f} "
                                        f"{'DRIFT' if d2 else 'ok'}"))  # fmt: skip
    else:
        rows.append(("evidently", f"not installed at {EVIDENTLY}: make .venv-evidently"))
    report(f"Drift, {args.rows:,} rows x {len(NUMERIC) + len(CATEGORICAL)} columns", rows)


if __name__ == "__main__":
    main()
