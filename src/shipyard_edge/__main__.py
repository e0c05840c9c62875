"""``shipyard-edge``: verify, predict and sync on a device (argparse: no CLI framework)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shipyard_edge.bundle import BundleError, load_public_keys, verify
from shipyard_edge.model import EdgeModel
from shipyard_edge.sync import Platform, PlatformUnreachableError
from shipyard_edge.telemetry import TelemetryBuffer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shipyard-edge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check a bundle's signature and files")
    check.add_argument("bundle")
    check.add_argument("--keys", required=True, help="trusted public key (PEM) or a folder")
    run = sub.add_parser("predict", help="predict JSON-lines rows (one object per line)")
    run.add_argument("bundle")
    run.add_argument("--keys", required=True)
    run.add_argument("--rows", required=True, help="a JSON-lines file, or - for stdin")
    run.add_argument("--telemetry", help="keep telemetry in this folder")
    sync = sub.add_parser("sync", help="report in, upload telemetry, fetch the assigned bundle")
    sync.add_argument("--platform", required=True, help="the Shipyard server URL")
    sync.add_argument("--device", required=True)
    sync.add_argument("--group", required=True)
    sync.add_argument("--token", help="a device token (or SHIPYARD_TOKEN)")
    sync.add_argument("--telemetry", required=True)
    sync.add_argument("--bundle", required=True, help="where the running bundle is kept")
    sync.add_argument("--keys", required=True)
    sync.add_argument("--bandwidth", type=float, default=8192.0, help="bytes per second")
    sync.add_argument("--max-seconds", type=float, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 2 with a one-line reason on bad input."""
    import os

    args = _parser().parse_args(argv)
    try:
        trusted = load_public_keys(args.keys)
        if args.command == "verify":
            bundle = verify(args.bundle, trusted)
            print(
                json.dumps(
                    {
                        "bundle": bundle.bundle_id,
                        "key_id": bundle.key_id,
                        "files": sorted(bundle.files),
                    }
                )
            )
            return 0
        if args.command == "predict":
            model = EdgeModel.open(args.bundle, trusted)
            text = sys.stdin.read() if args.rows == "-" else Path(args.rows).read_text()
            rows: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines() if line]
            result = model.predict(rows)
            if args.telemetry:
                buffer = TelemetryBuffer(args.telemetry)
                buffer.record(model, rows, result)
                buffer.close()
            for i in range(len(rows)):
                line: dict[str, Any] = {"predict": result.label[i].item()}
                if result.probabilities is not None:
                    line["score"] = float(result.score[i])
                print(json.dumps(line))
            return 0
        platform = Platform(
            args.platform,
            args.device,
            args.group,
            token=args.token or os.environ.get("SHIPYARD_TOKEN"),
        )
        current = verify(args.bundle, trusted).bundle_id if Path(args.bundle).exists() else None
        assignment = platform.checkin(current)
        buffer = TelemetryBuffer(args.telemetry)
        synced = platform.upload(
            buffer, bytes_per_second=args.bandwidth, max_seconds=args.max_seconds
        )
        buffer.close()
        changed = assignment.get("bundle") and assignment["bundle"] != current
        if changed:
            platform.fetch(assignment, args.bundle, trusted)
        print(
            json.dumps(
                {
                    "running": assignment.get("bundle") if changed else current,
                    "changed": bool(changed),
                    "uploaded": synced.records,
                    "bytes": synced.bytes_sent,
                    "left": synced.left,
                }
            )
        )
        return 0 if synced.reachable else 1
    except (BundleError, PlatformUnreachableError, OSError, ValueError) as exc:
        print(f"shipyard-edge: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
