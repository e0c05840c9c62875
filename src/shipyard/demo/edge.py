"""The demo's edge act: the champion exported for card terminals under the project's
``card-terminal`` budgets, signed, rolled out to a Lisbon terminal group in stages, the
terminals scoring offline and syncing their telemetry under a bandwidth cap, and the
platform reading it as it reads any deployment's prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.core.actor import acting_as
from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings
from shipyard.demo.data import FEATURES, LABEL, make_transactions

GROUP = "lisbon-terminals"
TERMINALS = 24
#: A terminal's uplink share for telemetry, bytes per second (a 2G/GPRS-class link).
BANDWIDTH = 16_000


def ship_to_terminals(
    settings: Settings, run: Any, spec: Path, *, seed: int, console: Console
) -> str:
    """Export, sign and roll out fraud@champion to terminals; return the bundle's id."""
    from shipyard.demo.workflow import platform_server
    from shipyard.edge.keys import KeyRing
    from shipyard.edge.service import deployment_of
    from shipyard.edge.targets import load_target
    from shipyard.predlog.reader import read_log
    from shipyard.sdk import context

    backend = context.current().get_backend()
    target = load_target("card-terminal", [spec])
    ring = KeyRing(settings.edge_keys_path)
    if "release" not in {k.name for k in ring.list()}:
        ring.create("release")
    holdout = run.load("split", "output_1")
    champion = backend.registry.resolve("models:/fraud@champion")
    console.print(
        f"\n[bold]Edge[/]: fraud v{champion.version} for target [bold]{target.name}[/] "
        f"(at most {target.max_size_mb} MB, p99 {target.max_p99_ms} ms per row on "
        f"{target.threads} thread, ROC AUC within {target.max_metric_drop}, no score moved "
        f"by more than {target.max_score_diff})"
    )
    bundle_path = settings.edge_keys_path.parent / "edge" / f"fraud-{target.name}.zip"
    try:
        with acting_as("ana"):
            report, record = backend.edge.export(
                "models:/fraud@champion",
                target,
                holdout,
                LABEL,
                ring.private("release"),
                dest=bundle_path,
            )
    except InvalidInputError as exc:  # the champion is not a model the terminals can run
        console.print(f"[yellow]fraud v{champion.version} stays off the terminals[/]: {exc}")
        return ""
    _show(report.as_dict(), console)
    if record is None:
        console.print("[red]no variant meets the card-terminal budgets: nothing shipped[/]")
        return ""
    fleet_rows = make_transactions(TERMINALS * 40, seed + 400)[FEATURES]
    with platform_server(settings) as url:
        table = Table(
            title=f"Staged rollout to {GROUP} ({TERMINALS} terminals)", header_style="bold"
        )
        for column in (
            "stage",
            "on the new bundle",
            "scored offline",
            "synced",
            "KB sent",
            "seconds (capped)",
        ):
            table.add_column(column)
        for stage, percent in enumerate((25, 100)):
            with acting_as("rui"):  # an approver: a rollout is a production change
                if stage == 0:
                    backend.edge.start_rollout(GROUP, record.id, percent)
                else:
                    backend.edge.set_percent(GROUP, percent)
            table.add_row(f"{percent}%", *_fleet_day(url, record.id, ring, fleet_rows))
        console.print(table)
    logged = read_log(settings.predlog_root, deployment=deployment_of(GROUP))
    console.print(
        f"bundle {record.id} ({record.size_bytes / 1000:.1f} KB signed zip, key "
        f"{record.key_id}); the platform logged {logged.num_rows} terminal predictions as "
        f"deployment {deployment_of(GROUP)}; shipyard edge rollout status {GROUP}"
    )
    _monitor_terminals(backend, console)
    return str(record.id)


def _monitor_terminals(backend: Any, console: Console) -> None:
    """The terminals' telemetry, judged by a monitor as any deployment's traffic is."""
    from datetime import UTC, datetime, timedelta

    from shipyard.edge.service import deployment_of
    from shipyard.monitoring.spec import parse_monitor

    spec = parse_monitor(
        {
            "name": "terminals-daily",
            "deployment": deployment_of(GROUP),
            "model": "models:/fraud@champion",
            "features": FEATURES,
            "window": {"every": "1d"},
            "quality": {"min_rows": 100},
        }
    )
    end = datetime.now(UTC) + timedelta(minutes=1)
    result = backend.monitors.run(spec, end - timedelta(days=1), end)
    drift = result.get("drift") or {}
    psi = (drift.get("score") or {}).get("psi")
    console.print(
        f"monitor terminals-daily on {result['rows']} terminal rows: {result['status']}; "
        f"drifted columns: {', '.join(drift.get('drifted_columns', [])) or 'none'}"
        + (f"; score PSI {psi:.3f}" if psi is not None else "")
    )


def _fleet_day(url: str, bundle: str, ring: Any, rows: Any) -> tuple[str, str, str, str, str]:
    """Every terminal checks in, fetches what it is assigned, scores its share offline and
    syncs its telemetry under the bandwidth cap."""
    import tempfile

    from shipyard_edge import EdgeModel, Platform, TelemetryBuffer

    trusted = ring.trusted()
    moved = scored = uploaded = sent = 0
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="shipyard-terminals-") as tmp:
        for i in range(TERMINALS):
            device = Platform(url, f"lisbon-{i:03d}", GROUP)
            home = Path(tmp) / device.device
            home.mkdir()
            assignment = device.checkin(None)
            if assignment.get("bundle") != bundle:
                continue
            moved += 1
            model = EdgeModel.open(device.fetch(assignment, home / "bundle.zip", trusted), trusted)
            buffer = TelemetryBuffer(home)
            share = rows.iloc[i * 40 : (i + 1) * 40].astype(object).to_dict("records")
            for start in range(0, len(share), 10):  # a payment at a time, in small bursts
                batch = share[start : start + 10]
                buffer.record(model, batch, model.predict(batch))
                scored += len(batch)
            device.checkin(model.bundle_id)
            result = device.upload(buffer, bytes_per_second=BANDWIDTH)
            uploaded += result.records
            sent += result.bytes_sent
            seconds += result.seconds
            buffer.close()
    return (
        f"{moved}/{TERMINALS}",
        f"{scored} payments",
        f"{uploaded} records",
        f"{sent / 1000:.1f}",
        f"{seconds:.1f}",
    )


def _show(report: dict[str, Any], console: Console) -> None:
    native = report["native"]
    table = Table(
        title=f"Variants of {report['uri']} ({report['holdout_rows']:,} held-out rows)",
        header_style="bold",
    )
    for column in ("variant", "KB", "p99 ms", "ROC AUC", "drop", "verdict"):
        table.add_column(column)
    table.add_row(
        "native (in process)",
        f"{native['size_bytes'] / 1000:.1f}",
        f"{native['p99_ms']:.3f}",
        f"{native['metric']:.4f}",
        "",
        "reference",
    )
    for v in report["variants"]:
        m = v["measured"]
        if m is None:
            table.add_row(v["name"], "", "", "", "", "[dim]not applicable[/]")
            continue
        verdict = "[green]chosen[/]" if v["name"] == report["chosen"] else v["status"]
        table.add_row(
            v["name"],
            f"{m['size_bytes'] / 1000:.1f}",
            f"{m['p99_ms']:.3f}",
            f"{m['metric']:.4f}",
            f"{m['metric_drop']:+.4f}",
            verdict,
        )
    console.print(table)
