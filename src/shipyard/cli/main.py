"""Entry point: ``shipyard <noun> <verb>``; errors become one line and an exit code."""

from __future__ import annotations

import logging
import sys

import typer

from shipyard import __version__
from shipyard.cli import (
    artifacts,
    automl,
    db,
    demo,
    edge,
    experiments,
    federated,
    gate,
    governance,
    imports,
    models,
    monitoring,
    pipelines,
    predlog,
    runs,
    schedules,
    serve,
    server,
    spec,
)
from shipyard.cli.errors import EXIT_INTERNAL, exit_code
from shipyard.cli.output import error
from shipyard.cli.state import State
from shipyard.core.errors import ShipyardError

ENV_HELP = """Environment: SHIPYARD_URI (store: folder, sqlite:///..., postgresql+psycopg://...,
http://server), SHIPYARD_ARTIFACTS (folder or s3://bucket/prefix), SHIPYARD_TOKEN,
SHIPYARD_USER (who acts in local mode), SHIPYARD_AUTH (server: none or tokens),
SHIPYARD_FLUSH_INTERVAL, SHIPYARD_PREDLOG (prediction log folder), SHIPYARD_PROJECT,
SHIPYARD_OPENLINEAGE_URL / SHIPYARD_OPENLINEAGE_FILE (pipeline lineage events; OPENLINEAGE_URL
is read too), SHIPYARD_AUDIT_RETENTION_YEARS, SHIPYARD_WEBHOOK_ALLOW (non-public webhook hosts),
NO_COLOR. Exit codes: 0 ok, 1 a check failed,
2 usage or input error, 3 internal or store error."""

app = typer.Typer(
    name="shipyard",
    help=f"Shipyard: self-hosted MLOps.\n\n{ENV_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(db.app, name="db")
app.add_typer(pipelines.app, name="pipeline")
app.command("lineage")(pipelines.lineage)
app.add_typer(schedules.app, name="schedule")
app.command("scheduler")(schedules.scheduler)
app.command("server")(server.serve)
app.command("ui")(server.ui)
app.add_typer(models.app, name="models")
app.add_typer(gate.app, name="gate")
app.add_typer(governance.users_app, name="users")
app.add_typer(governance.tokens_app, name="tokens")
app.add_typer(governance.audit_app, name="audit")
app.add_typer(monitoring.feedback_app, name="feedback")
app.add_typer(monitoring.monitor_app, name="monitor")
app.add_typer(monitoring.alerts_app, name="alerts")
for _name, _command in (
    ("request-promotion", governance.request_promotion),
    ("approve", governance.approve),
    ("reject", governance.reject),
    ("rollback", governance.rollback),
    ("requests", governance.requests),
    ("set", governance.set_fields),
    ("dossier", governance.dossier),
):
    models.app.command(_name)(_command)
app.command("serve")(serve.serve)
app.add_typer(predlog.app, name="predlog")
app.add_typer(imports.app, name="import")
app.command("demo")(demo.demo)
app.command("plan")(spec.plan)
app.command("apply")(spec.apply)
app.command("drift")(spec.drift)
app.command("export")(spec.export)
app.add_typer(spec.spec_app, name="spec")
app.add_typer(automl.app, name="automl")
app.add_typer(edge.app, name="edge")
app.add_typer(federated.app, name="federated")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    uri: str | None = typer.Option(None, "--uri", help="Store URI (overrides SHIPYARD_URI)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details to stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Read settings once, at the edge."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)
    ctx.obj = State(uri_override=uri)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors, as Typer (which vendors Click) raises them."""
    return (
        isinstance(exc, typer.TyperException) and hasattr(exc, "show") and hasattr(exc, "exit_code")
    )


def main() -> None:
    """Run the CLI, mapping errors to one line on stderr and the documented exit code."""
    try:
        # Without standalone mode Click returns the code of a typer.Exit instead of exiting.
        result = app(standalone_mode=False)
    except ShipyardError as exc:
        error(str(exc))
        sys.exit(exit_code(exc))
    except (typer.Abort, KeyboardInterrupt):
        error("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last resort must never print a traceback
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        logging.getLogger(__name__).debug("unexpected error", exc_info=exc)
        error(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        sys.exit(EXIT_INTERNAL)
    sys.exit(result if isinstance(result, int) else 0)
