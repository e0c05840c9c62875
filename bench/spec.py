"""Infrastructure as code at 500 objects: parse, plan, apply, re-plan, drift and export of
one ``shipyard.yaml`` on SQLite, PostgreSQL and through ``shipyard server``, against making
the same objects one call at a time through the services (what a team scripts without a
spec: one transaction and one audit event per call, no plan, no drift).

    .venv/bin/python bench/spec.py [--objects 500]

Goal (issue 13): plan of 500 objects well under 2 s. Bounded: loopback only, one run each.
PostgreSQL: SHIPYARD_TEST_POSTGRES_URI (default the machine's `test` database); a schema is
made for the run and dropped after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import BIN, free_port, report, start, stop

from shipyard.bootstrap import Backend, local_backend, rest_backend
from shipyard.core.settings import Settings
from shipyard.spec.loader import dump_spec, parse_spec

PG = os.environ.get(
    "SHIPYARD_TEST_POSTGRES_URI", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HEAD = "apiVersion: shipyard.dev/v1\n"


def make_spec(objects: int) -> str:
    """``objects`` documents, about equally of the nine kinds."""
    per = max(1, objects // 9)
    docs = []

    def add(kind: str, name: str, spec: str) -> None:
        docs.append(f"{HEAD}kind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n")

    for i in range(per):
        add("RoleBinding", f"user{i}", "{role: member}")
        add("Experiment", f"exp{i}", f"{{tags: {{team: t{i % 7}}}}}")
        add("Model", f"model{i}", f"{{owner: team{i % 7}, risk_tier: high, approvals_required: 2}}")
        add("Pipeline", f"pipe{i}", f'{{entry: "flows:p{i}", schedule: "{i % 60} 3 * * *"}}')
        add("GatePolicy", f"gate{i}", "{label: y, checks: [{metric: roc_auc, min: 0.8}]}")
        add("Deployment", f"dep{i}", f'{{model: "models:/model{i}@champion", workers: 2}}')
        add("Notifier", f"note{i}", '{type: webhook, url: "${HOOK}"}')
        add("Monitor", f"mon{i}", f"{{deployment: dep{i}, window: {{every: 1h}}}}")
        add("AlertRule", f"rule{i}", f"{{monitor: mon{i}, check: drift, notify: [note{i}]}}")
    extra = objects - 9 * per
    for i in range(extra):
        add("RoleBinding", f"extra{i}", "{role: viewer}")
    return "---\n".join(docs)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@contextmanager
def stores(tmp: Path) -> Iterator[list[tuple[str, Callable[[], Backend]]]]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    pg = f"{PG}{'&' if '?' in PG else '?'}options=-csearch_path%3D{schema}"
    port = free_port()
    server_home = tmp / "server"
    proc = start(
        [str(BIN / "shipyard"), "server", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        {"SHIPYARD_URI": str(server_home)},
    )
    try:
        yield [
            ("SQLite", lambda: local_backend(Settings(uri=str(tmp / "sqlite")))),
            (
                "PostgreSQL",
                lambda: local_backend(
                    Settings(
                        uri=pg, artifacts=str(tmp / "pg-blobs"), audit_anchor=str(tmp / "a.json")
                    )
                ),
            ),
            ("server (SQLite)", lambda: rest_backend(Settings(uri=f"http://127.0.0.1:{port}"))),
        ]
    finally:
        stop(proc)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=500)
    args = parser.parse_args()
    text = make_spec(args.objects)
    parse_s, docs = timed(lambda: parse_spec(text))
    edited_text = text.replace("workers: 2", "workers: 3", 50)
    edited = parse_spec(edited_text)
    rows: list[tuple[str, str]] = [
        ("documents", f"{len(docs)}"),
        ("parse + check (all kinds, secrets, references)", f"{parse_s * 1000:.0f} ms"),
    ]
    with tempfile.TemporaryDirectory() as tmp, stores(Path(tmp)) as targets:
        for label, make in targets:
            backend = make()
            spec = backend.spec
            try:
                cold_s, first = timed(lambda spec=spec: spec.plan(docs))
                apply_s, _ = timed(lambda spec=spec: spec.apply(docs))
                noop_s, again = timed(lambda spec=spec: spec.plan(docs))
                edit_s, changed = timed(lambda spec=spec: spec.plan(edited))
                apply2_s, _ = timed(lambda spec=spec: spec.apply(edited))
                drift_s, _ = timed(spec.drift)
                export_s, exported = timed(lambda spec=spec: dump_spec(spec.export()))
                assert first.count("create") == len(docs)
                assert not again.changes
                assert changed.count("update") == 50
                assert exported
                rows += [
                    (f"{label}: plan, empty store ({len(docs)} to add)", f"{cold_s * 1000:.0f} ms"),
                    (
                        f"{label}: apply {len(docs)} objects (one transaction)",
                        f"{apply_s * 1000:.0f} ms",
                    ),
                    (f"{label}: plan, nothing to do", f"{noop_s * 1000:.0f} ms"),
                    (f"{label}: plan, 50 changed", f"{edit_s * 1000:.0f} ms"),
                    (f"{label}: apply 50 changes", f"{apply2_s * 1000:.0f} ms"),
                    (f"{label}: drift", f"{drift_s * 1000:.0f} ms"),
                    (f"{label}: export", f"{export_s * 1000:.0f} ms"),
                ]
            finally:
                backend.close()
        # The same native objects made one call at a time (users, experiments, models with
        # their governance): what a script does without a spec.
        per = max(1, args.objects // 9)
        backend = local_backend(Settings(uri=str(Path(tmp) / "by-hand")))
        try:
            hand_s, _ = timed(lambda: _native_by_hand(backend, per))
        finally:
            backend.close()
        spec_only = parse_spec(
            "---\n".join(
                p
                for p in text.split("---\n")
                if any(k in p for k in ("RoleBinding", "Experiment", "kind: Model"))
            )
        )
        backend = local_backend(Settings(uri=str(Path(tmp) / "by-spec")))
        try:
            spec_s, _ = timed(lambda: backend.spec.apply(spec_only))
        finally:
            backend.close()
        rows += [
            (
                f"SQLite: {len(spec_only)} users, experiments, models one call each",
                f"{hand_s * 1000:.0f} ms",
            ),
            (f"SQLite: the same {len(spec_only)} by apply", f"{spec_s * 1000:.0f} ms"),
            ("apply vs one call each", f"{hand_s / spec_s:.1f}x faster"),
        ]
    report(f"Project spec, {len(docs)} objects", rows)


def _native_by_hand(backend: Backend, per: int) -> None:
    identity = backend.governance.identity
    registry = backend.registry
    for i in range(per):
        identity.create_user(f"user{i}", "member")
        backend.tracking.create_experiment(f"exp{i}", {"team": f"t{i % 7}"})
        registry.create_model(f"model{i}")
        registry.set_governance(
            f"model{i}", owner=f"team{i % 7}", risk_tier="high", approvals_required=2
        )


if __name__ == "__main__":
    main()
