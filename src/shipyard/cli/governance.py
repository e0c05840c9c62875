"""``shipyard users|tokens|audit`` and the promotion commands of ``shipyard models``."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from shipyard.cli.errors import EXIT_CHECK_FAILED
from shipyard.cli.output import console, emit_json, result, table, when
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError
from shipyard.governance.models import PromotionRequest

users_app = typer.Typer(help="Users and roles (server mode with token auth).", no_args_is_help=True)
tokens_app = typer.Typer(
    help="API tokens: create (shown once), list, revoke.", no_args_is_help=True
)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


# users ---------------------------------------------------------------------------------------


@users_app.command("create")
def create_user(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option(..., "--role", help="viewer, member, approver or admin."),
    as_json: bool = JSON_OPT,
) -> None:
    """Add a user (run against the store itself to create the first admin)."""
    user = state(ctx).backend.governance.identity.create_user(name, role)
    result(user, as_json, f"user {user.name} created with role {user.role.value}")


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Every user and role."""
    found = state(ctx).backend.governance.identity.list_users()
    if as_json:
        emit_json({"users": found})
        return
    table(
        "Users",
        ["name", "role", "disabled", "created by", "created"],
        [(u.name, u.role.value, u.disabled, u.created_by, when(u.created_at)) for u in found],
    )


# tokens --------------------------------------------------------------------------------------


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="The user the token acts as."),
    name: str = typer.Option("default", "--name", help="A label for the token."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime: 30d, 12h, 90m, 2w."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create a token and print it once: it cannot be shown again."""
    record, secret = state(ctx).backend.governance.identity.create_token(user, name, expires)
    if as_json:
        emit_json(
            {"user": record.user, "token": secret, "id": record.id, "expires_at": record.expires_at}
        )
        return
    console.print(f"token {record.id} for {record.user} (shown once, store it now):")
    console.print(secret, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only this user's tokens."),
    as_json: bool = JSON_OPT,
) -> None:
    """Token records (never secrets)."""
    found = state(ctx).backend.governance.identity.list_tokens(user)
    if as_json:
        emit_json({"tokens": found})
        return
    table(
        "Tokens",
        ["id", "user", "name", "created", "expires", "revoked"],
        [
            (t.id, t.user, t.name, when(t.created_at), when(t.expires_at), when(t.revoked_at))
            for t in found
        ],
    )


@tokens_app.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: str = typer.Argument(..., help="Token id (tok_...)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Revoke a token at once."""
    record = state(ctx).backend.governance.identity.revoke_token(token_id)
    result(record, as_json, f"token {record.id} of {record.user} revoked")


# audit ---------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)([hdw])$")


def parse_since(text: str | None) -> int | None:
    """Epoch ms from an ISO date/time (UTC unless stated) or a span back from now (7d)."""
    if text is None:
        return None
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        moment = datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
        return int(moment.timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"--since must be an ISO date/time or a span like 7d; got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@audit_app.command("verify")
def verify(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Walk the hash chain; exit 1 and name the first broken link if any."""
    check = state(ctx).backend.governance.audit.verify()
    if as_json:
        emit_json(check)
    elif check.ok:
        console.print(f"[green]audit chain intact[/]: {check.events} events, head {check.head}")
    else:
        console.print(f"[bold red]audit chain broken[/] at event {check.broken_at}: {check.reason}")
    if not check.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


@audit_app.command("list")
def list_events(
    ctx: typer.Context,
    since: str | None = typer.Option(None, "--since", help="ISO date/time or 7d, 12h."),
    obj: str | None = typer.Option(None, "--object", help="Object, e.g. models:/fraud/3."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many events."),
    as_json: bool = JSON_OPT,
) -> None:
    """Audit events, oldest first."""
    found = state(ctx).backend.governance.audit.events(
        since=parse_since(since), obj=obj, limit=limit
    )
    if as_json:
        emit_json({"events": found})
        return
    table(
        "Audit log",
        ["seq", "time", "actor", "action", "object", "payload"],
        [
            (
                e.seq,
                when(e.time),
                e.actor,
                e.action,
                e.object,
                json.dumps(e.payload, sort_keys=True)[:80],
            )
            for e in found
        ],
    )


@audit_app.command("export")
def export_events(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="JSON lines file to write."),
    since: str | None = typer.Option(None, "--since", help="ISO date/time or 7d, 12h."),
    obj: str | None = typer.Option(None, "--object", help="Object, e.g. models:/fraud."),
) -> None:
    """Write events with their hashes as JSON lines (re-verifiable elsewhere)."""
    found = state(ctx).backend.governance.audit.events(since=parse_since(since), obj=obj)
    with output.open("w", encoding="utf-8") as fh:
        for event in found:
            fh.write(
                json.dumps(dataclasses.asdict(event), sort_keys=True, ensure_ascii=False) + "\n"
            )
    console.print(f"{len(found)} events written to {output}")


# promotion (registered under ``shipyard models``) ---------------------------------------------


def _show(request: PromotionRequest, as_json: bool, message: str) -> None:
    result(request, as_json, message)


def request_promotion(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version number."),
    to: str = typer.Option("production", "--to", help="Target state."),
    note: str = typer.Option("", "--note", help="Why this version should be promoted."),
    as_json: bool = JSON_OPT,
) -> None:
    """Ask for a promotion; the version needs a passing gate report."""
    req = state(ctx).backend.governance.approvals.request(name, version, to=to, note=note)
    _show(req, as_json, f"promotion of {name} v{req.version} to {to} requested ({req.id})")


NAME_ARG = typer.Argument(..., help="Model name.")
VERSION_ARG = typer.Argument(..., help="Version number.")
DECISION_NOTE = typer.Option("", "--note", help="The reason for the decision.")


def approve(
    ctx: typer.Context,
    name: str = NAME_ARG,
    version: str = VERSION_ARG,
    note: str = DECISION_NOTE,
    as_json: bool = JSON_OPT,
) -> None:
    """Approve a promotion (approver role; not the version's author or trainer)."""
    req = state(ctx).backend.governance.approvals.approve(name, version, note=note)
    done = (
        "promoted to production, champion moved"
        if req.status == "approved"
        else "approval recorded"
    )
    _show(req, as_json, f"{name} v{req.version}: {done}")


def reject(
    ctx: typer.Context,
    name: str = NAME_ARG,
    version: str = VERSION_ARG,
    note: str = DECISION_NOTE,
    as_json: bool = JSON_OPT,
) -> None:
    """Reject a promotion request."""
    req = state(ctx).backend.governance.approvals.reject(name, version, note=note)
    _show(req, as_json, f"{name} v{req.version}: promotion rejected")


def rollback(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    note: str = typer.Option("", "--note", help="Why."),
    as_json: bool = JSON_OPT,
) -> None:
    """Give champion back to the version that held it before the last promotion."""
    backend = state(ctx).backend
    mv = backend.governance.approvals.rollback(name, note=note)
    result(mv, as_json, f"{name}: champion rolled back to v{mv.version}")


def requests(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: int | None = typer.Argument(None, help="Only this version."),
    as_json: bool = JSON_OPT,
) -> None:
    """Promotion requests and their decisions."""
    found = state(ctx).backend.governance.approvals.requests(name, version)
    if as_json:
        emit_json({"requests": found})
        return
    table(
        f"Promotion requests of {name}",
        ["id", "version", "status", "requested by", "decisions", "created"],
        [
            (
                r.id,
                r.version,
                r.status,
                r.requested_by,
                "; ".join(f"{a.approver}: {a.decision}" for a in r.approvals),
                when(r.created_at),
            )
            for r in found
        ],
    )


def set_fields(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    use_case: str | None = typer.Option(
        None, "--use-case", help="e.g. credit_scoring, fraud_detection."
    ),
    owner: str | None = typer.Option(None, "--owner", help="Accountable owner."),
    risk_tier: str | None = typer.Option(None, "--risk-tier", help="low, medium, high, critical."),
    intended_use: str | None = typer.Option(None, "--intended-use", help="What it is for."),
    approvals: int | None = typer.Option(None, "--approvals", help="Approvals a promotion needs."),
    as_json: bool = JSON_OPT,
) -> None:
    """Record the fields regulators ask for (admin on a server)."""
    model = state(ctx).backend.registry.set_governance(
        name,
        use_case=use_case,
        owner=owner,
        risk_tier=risk_tier,
        intended_use=intended_use,
        approvals_required=approvals,
    )
    result(model, as_json, f"{model.name}: governance fields updated")


def dossier(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version number."),
    output: Path = typer.Option(..., "--output", "-o", help="HTML file to write."),
    archive: bool = typer.Option(
        True, "--archive/--no-archive", help="Also keep a copy with the version's run."
    ),
) -> None:
    """One self-contained page for a reviewer: card, data, gates, approvals, lineage, audit."""
    from shipyard.governance.dossier import render_dossier

    st = state(ctx)
    backend = st.backend
    gov = backend.governance
    with console.status("assembling the dossier"):
        page = render_dossier(
            backend.registry,
            backend.gates,
            gov.approvals,
            gov.audit,
            backend.pipelines.store if backend.pipelines else None,
            name,
            version,
            retention_years=st.settings.audit_retention_years,
        )
    output.write_text(page, encoding="utf-8")
    message = f"dossier of {name} v{version} written to {output}"
    if archive:
        mv = backend.registry.get_version(name, version)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        record = backend.tracking.log_artifact(
            mv.run_id, output, f"dossiers/{mv.name}-v{mv.version}-{stamp}.html"
        )
        gov.audit.record(
            "dossier.archived", mv.uri, {"artifact": record.name, "sha256": record.digest}
        )
        message += f"; archived as runs:/{mv.run_id}/{record.name}"
    console.print(message)
