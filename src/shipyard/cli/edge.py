"""``shipyard edge``: export a model for a device class as a signed bundle, manage signing
keys, verify a bundle, and roll bundles out to device groups."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import typer

from shipyard.cli.output import console, emit_json, fmt, spinner, table, when
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError

app = typer.Typer(
    help="Edge: signed ONNX bundles under device budgets, staged rollouts.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="Ed25519 keys that sign bundles.", no_args_is_help=True)
rollout_app = typer.Typer(help="Staged rollouts per device group.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(rollout_app, name="rollout")


def _ring(ctx: typer.Context) -> Any:
    from shipyard.edge.keys import KeyRing

    settings = state(ctx).settings
    secret = settings.edge_key_passphrase
    return KeyRing(settings.edge_keys_path, secret.get_secret_value() if secret else None)


@app.command("export")
def export(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="models:/NAME@ALIAS or models:/NAME/VERSION"),
    target: str = typer.Option(..., "--target", "-t", help="An EdgeTarget's name."),
    data: str = typer.Option(
        ...,
        "--data",
        "-d",
        help="Held-out rows with the label: PATH.parquet|csv, "
        "prun_…:STEP[:OUTPUT] or runs:/RUN/PATH.",
    ),
    label: str = typer.Option(..., "--label", "-l", help="The label column of --data."),
    key: str = typer.Option("default", "--key", "-k", help="The signing key's name."),
    spec: list[Path] = typer.Option(
        [],
        "--spec",
        "-f",
        help="Files declaring targets (default ./shipyard.yaml and ./pyproject.toml).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the bundle here."),
    report_html: Path | None = typer.Option(None, "--html", help="Write the report as HTML."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Convert, try every variant, measure each against the target's budgets, and bundle
    and sign the smallest that meets them all (exit 1 when none does)."""
    from shipyard.edge.targets import load_target
    from shipyard.sdk import context
    from shipyard.sdk.data import load_source

    st = state(ctx)
    context.replace(st.settings)
    budget = load_target(target, list(spec) or None)
    signing = _ring(ctx).private(key)
    source = load_source(data)
    with spinner(quiet=as_json) as bar:
        task = bar.add_task("loading the model", total=None)
        report, record = st.backend.edge.export(
            model,
            budget,
            source.frame,
            label,
            signing,
            dest=out,
            progress=lambda message: bar.update(task, description=message),
        )
    body = report.as_dict()
    body["data"] = source.name
    if report_html is not None:
        report_html.write_text(render_html(body))
    if as_json:
        emit_json(body)
    else:
        show_report(body)
    if record is None:
        raise typer.Exit(1)


def show_report(body: dict[str, Any]) -> None:
    """The report as a table, each variant with why it passed or failed."""
    native = body["native"]
    metric = body["metric"]
    rows: list[list[Any]] = [
        [
            "native",
            body["flavor"],
            f"{native['size_bytes'] / 1e6:.3f}",
            f"{native['p99_ms']:.3f}",
            f"{native['metric']:.4f}",
            "",
            "",
            "reference",
        ]
    ]
    for v in body["variants"]:
        m = v["measured"]
        chosen = " ← chosen" if v["name"] == body["chosen"] else ""
        rows.append(
            [
                v["name"] + chosen,
                v["status"],
                f"{m['size_bytes'] / 1e6:.3f}" if m else "",
                f"{m['p99_ms']:.3f}" if m else "",
                f"{m['metric']:.4f}" if m else "",
                f"{m['metric_drop']:+.4f}" if m else "",
                f"{m['agreement']:.4f}" if m else "",
                _why(v),
            ]
        )
    table(
        f"{body['uri']} for target {body['target']['name']} ({body['holdout_rows']} held-out "
        f"rows, {body['target']['threads']} thread(s))",
        ["variant", "status", "MB", "p99 ms", metric, "drop", "agree", "why"],
        rows,
    )
    bundle = body.get("bundle")
    if bundle:
        chosen = next(v for v in body["variants"] if v["name"] == body["chosen"])
        m = chosen["measured"]
        smaller = native["size_bytes"] / max(m["size_bytes"], 1)
        faster = native["p99_ms"] / max(m["p99_ms"], 1e-9)
        console.print(
            f"chose [bold]{body['chosen']}[/]: {smaller:.1f}x smaller and {faster:.0f}x faster "
            "than the "
            f"native model; bundle {bundle['id']} ({bundle['size_bytes'] / 1e6:.3f} MB, key "
            f"{bundle['key_id']})" + (f" written to {bundle['path']}" if bundle["path"] else ""),
            highlight=False,
        )
    else:
        console.print("[bold red]no variant meets every budget of the target[/]")


def _why(variant: dict[str, Any]) -> str:
    """The table's short reason: what failed, or that every budget was met."""
    if variant["status"] == "passed":
        return "meets every budget"
    failed = [r.removeprefix("FAIL: ") for r in variant["reasons"] if r.startswith("FAIL")]
    text = "; ".join(failed or variant["reasons"])
    return text if len(text) <= 90 else text[:87] + "..."


def render_html(body: dict[str, Any]) -> str:
    """A self-contained HTML page of the report."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("shipyard.edge", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    return env.get_template("report.html").render(report=body, escape=html.escape)


@app.command("verify")
def verify(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A bundle file."),
    keys: Path | None = typer.Option(
        None,
        "--keys",
        help="Trusted public key (PEM) or a folder of them (default: this store's signing keys).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check a bundle's signature and every file's hash; exit 2 on any change."""
    from shipyard_edge.bundle import BundleError, load_public_keys
    from shipyard_edge.bundle import verify as check

    try:
        trusted = load_public_keys(keys) if keys is not None else _ring(ctx).trusted()
        found = check(bundle, trusted)
    except BundleError as exc:
        raise InvalidInputError(f"{bundle}: {exc}") from None
    manifest = found.manifest
    summary = {
        "bundle": found.bundle_id,
        "verified": True,
        "key_id": found.key_id,
        "model": manifest.get("model"),
        "variant": (manifest.get("variant") or {}).get("name"),
        "files": {n: manifest["files"][n]["sha256"] for n in sorted(found.files)},
    }
    if as_json:
        emit_json(summary)
        return
    model = manifest.get("model") or {}
    console.print(
        f"[green]verified[/] {found.bundle_id}: signed by key {found.key_id}, "
        f"{len(found.files)} files match the manifest; {model.get('uri')} as "
        f"{summary['variant']}",
        highlight=False,
    )


@app.command("bundles")
def bundles(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", "-m"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Bundles the platform keeps, newest first."""
    found = state(ctx).backend.edge.bundles(model)
    if as_json:
        emit_json([b.summary() for b in found])
        return
    table(
        "Edge bundles",
        ["bundle", "model", "target", "variant", "MB", "key", "created", "by"],
        [
            [
                b.id,
                f"{b.model} v{b.version}",
                b.target,
                b.variant,
                f"{b.size_bytes / 1e6:.3f}",
                b.key_id,
                when(b.created_at),
                b.created_by,
            ]
            for b in found
        ],
    )


@keys_app.command("create")
def keys_create(ctx: typer.Context, name: str = typer.Argument("default")) -> None:
    """Make a signing key pair (encrypted when SHIPYARD_EDGE_KEY_PASSPHRASE is set)."""
    info = _ring(ctx).create(name)
    console.print(
        f"created key {info.name} (id {info.key_id}); devices trust {info.public_path}",
        highlight=False,
    )


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Signing keys."""
    found = _ring(ctx).list()
    if as_json:
        emit_json(
            [
                {
                    "name": k.name,
                    "key_id": k.key_id,
                    "public": k.public_path,
                    "encrypted": k.encrypted,
                }
                for k in found
            ]
        )
        return
    table(
        "Edge signing keys",
        ["name", "key id", "encrypted", "public key"],
        [[k.name, k.key_id, fmt(k.encrypted), k.public_path] for k in found],
    )


@keys_app.command("public")
def keys_public(ctx: typer.Context, name: str = typer.Argument("default")) -> None:
    """Print a public key (PEM) to install on devices."""
    typer.echo(_ring(ctx).public_pem(name).decode(), nl=False)


@rollout_app.command("start")
def rollout_start(
    ctx: typer.Context,
    group: str = typer.Argument(..., help="The device group."),
    bundle: str = typer.Option(..., "--bundle", "-b"),
    percent: int = typer.Option(10, "--percent", "-p", help="Share of the group, 0-100."),
) -> None:
    """Move a share of a device group to a bundle."""
    r = state(ctx).backend.edge.start_rollout(group, bundle, percent)
    console.print(
        f"rollout {r.id}: {r.percent}% of {group} to {r.bundle_id}"
        + (f" (the rest stay on {r.previous_bundle_id})" if r.previous_bundle_id else ""),
        highlight=False,
    )


@rollout_app.command("set")
def rollout_set(
    ctx: typer.Context,
    group: str = typer.Argument(...),
    percent: int = typer.Option(..., "--percent", "-p"),
) -> None:
    """Change the share of a group's active rollout."""
    r = state(ctx).backend.edge.set_percent(group, percent)
    console.print(f"rollout {r.id}: {r.percent}% of {group} on {r.bundle_id}", highlight=False)


@rollout_app.command("rollback")
def rollout_rollback(
    ctx: typer.Context,
    group: str = typer.Argument(...),
    reason: str | None = typer.Option(None, "--reason"),
) -> None:
    """Send every device of a group back to the bundle it ran before."""
    r = state(ctx).backend.edge.rollback(group, reason)
    console.print(
        f"rolled back {r.id}: {group} returns to {r.previous_bundle_id or 'no bundle'}",
        highlight=False,
    )


@rollout_app.command("status")
def rollout_status(
    ctx: typer.Context,
    group: str | None = typer.Argument(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Rollouts and what each device reports running."""
    edge = state(ctx).backend.edge
    rollouts = edge.rollouts(group)
    devices = edge.devices(group)
    if as_json:
        emit_json(
            {"rollouts": [r.__dict__ for r in rollouts], "devices": [d.__dict__ for d in devices]}
        )
        return
    table(
        "Rollouts",
        ["rollout", "group", "bundle", "percent", "status", "previous", "by"],
        [
            [
                r.id,
                r.group,
                r.bundle_id,
                r.percent,
                r.status,
                r.previous_bundle_id or "",
                r.created_by,
            ]
            for r in rollouts
        ],
    )
    table(
        "Devices",
        ["device", "group", "runs", "last seen", "telemetry rows", "dropped"],
        [
            [
                d.device,
                d.group,
                d.bundle_id or "",
                when(d.last_seen),
                d.telemetry_rows,
                d.dropped_rows,
            ]
            for d in devices
        ],
    )
