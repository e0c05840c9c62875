"""The web UI: server-rendered pages over the same services as the REST API.

Server-rendered (Jinja2) rather than a built single-page app: a model risk reviewer's
pages are tables, charts and a few forms; rendering them next to the data keeps sorting,
filtering and paging in SQL, lets every refusal come from the server's own rules, needs no
node toolchain to build or ship, and keeps each page's JavaScript to one 50 KiB chart
library (uPlot) plus a small script. Every asset is in the wheel under ``static/``.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from shipyard import __version__
from shipyard.bootstrap import Backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    ShipyardError,
)
from shipyard.gates.render import num, pct
from shipyard.governance.identity import IdentityService
from shipyard.governance.lineage import model_lineage
from shipyard.governance.models import Role
from shipyard.monitoring.report import bars_svg
from shipyard.pipelines.capture import LOG_ARTIFACT
from shipyard.pipelines.lineage import lineage_tree
from shipyard.server.auth import Actor, LoginThrottle, current_actor
from shipyard.tracking.models import Run
from shipyard.tracking.service import TrackingService
from shipyard.ui.graph import NODE_H, NODE_W, Box, layout
from shipyard.ui.session import (
    SESSION_LIFETIME,
    check_csrf,
    clear_session,
    csrf_token,
    remember_csrf,
    session_secret,
    set_session,
)

STATIC = Path(__file__).parent / "static"
PAGE_SIZES = (25, 50, 100, 200)
LOG_TAIL = 64 * 1024  # characters of a step's log shown on its pipeline run's page
#: Content Security Policy of every page: scripts and styles from Shipyard only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
ANONYMOUS = Actor("anonymous", Role.VIEWER)
NAV = (
    ("runs", "/runs", "Runs"),
    ("pipelines", "/pipelines", "Pipelines"),
    ("models", "/models", "Models"),
    ("deployments", "/deployments", "Deployments"),
    ("edge", "/edge", "Edge"),
    ("monitors", "/monitors", "Monitors"),
    ("lineage", "/lineage", "Lineage"),
    ("project", "/project", "Project"),
    ("audit", "/audit", "Audit log"),
)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


class Assets(StaticFiles):
    """The UI's own scripts and styles: cacheable for a day (URLs carry the version)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        """Serve a file with cache and sniffing headers."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def when(ms: int | None) -> str:
    """Epoch milliseconds as a UTC time for a table cell."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    """A human duration between two epoch-millisecond times."""
    if start is None or end is None:
        return "-"
    seconds = max(end - start, 0) / 1000
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("shipyard.ui", "templates"),
                PackageLoader("shipyard.gates", "templates"),
            ]
        ),
        autoescape=select_autoescape(default=True),
    )
    env.globals.update(num=num, pct=pct, when=when, duration=duration, nav=NAV)
    env.filters["tojson_attr"] = lambda v: json.dumps(v, allow_nan=False)
    return env


ENV = _environment()


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def render(
    request: Request, template: str, section: str = "", status: int = 200, **context: Any
) -> HTMLResponse:
    """A page with the common frame: who is signed in, the CSRF token, security headers."""
    actor = current_actor(request)
    if request.app.state.settings.auth == "tokens" and not actor.authenticated:
        actor = ANONYMOUS  # a refusal before sign-in: nobody is signed in
    body = ENV.get_template(template).render(
        request=request,
        section=section,
        actor=actor,
        csrf=csrf_token(request),
        server_auth=request.app.state.settings.auth == "tokens",
        version=__version__,
        can_approve=actor.role.allows(Role.APPROVER),
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    secure(response)
    remember_csrf(request, response)
    return response


def secure(response: Response) -> None:
    """The headers every page carries."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def is_page(request: Request) -> bool:
    """Tell whether a request is for a UI page (errors become HTML, not JSON)."""
    path = request.url.path
    api = ("/api/", "/health", "/metrics", "/docs", "/redoc", "/openapi.json", "/static/")
    return not path.startswith(api)


def error_page(request: Request, status: int, message: str) -> Response:
    """A refusal or failure shown as a page (a GET without a session goes to the login)."""
    if status == 401 and request.method == "GET":
        target = "/login?" + urlencode({"next": request.url.path})
        return RedirectResponse(target, status_code=303)
    back = request.url.path.rsplit("/", 1)[0] or "/" if request.method == "POST" else None
    return render(
        request, "error.html", status=status, status_code=status, message=message, back=back
    )


def _csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    check_csrf(request, csrf)


CsrfDep = Depends(_csrf)
ActorDep = Annotated[Actor, Depends(current_actor)]


def _chart(x: list[float], series: Mapping[str, list[float | None]], xlabel: str) -> str:
    """Chart data for ``shipyard.js`` (uPlot): one shared x axis and aligned series."""

    def clean(v: float | None) -> float | None:
        return v if v is not None and math.isfinite(v) else None

    return json.dumps(
        {
            "x": x,
            "xlabel": xlabel,
            "series": [{"label": k, "values": [clean(v) for v in vs]} for k, vs in series.items()],
        },
        allow_nan=False,
    )


def _aligned(
    curves: Mapping[str, Mapping[float, float]],
) -> tuple[list[float], dict[str, list[float | None]]]:
    xs = sorted({x for points in curves.values() for x in points})
    return xs, {label: [points.get(x) for x in xs] for label, points in curves.items()}


# sign in ----------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """The sign-in form (server mode); local mode needs none."""
    if request.app.state.settings.auth != "tokens":
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", next=_local_target(next), message=None)


def _local_target(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
async def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    """Exchange an API token for a session cookie of its own."""
    if request.app.state.settings.auth != "tokens":
        return RedirectResponse("/", status_code=303)
    client = request.client.host if request.client else "unknown"
    throttle: LoginThrottle = request.app.state.login_throttle
    identity = _backend(request).governance.identity
    try:
        throttle.check(client)
        user = await run_in_threadpool(identity.authenticate, token.strip())
    except AuthenticationError as exc:
        throttle.failed(client)
        return render(
            request, "login.html", status=401, next=_local_target(next), message=exc.message
        )
    except ShipyardError as exc:
        return render(
            request, "login.html", status=429, next=_local_target(next), message=exc.message
        )

    def start_session() -> str:
        with acting_as(user.name):
            return identity.create_token(user.name, "ui-session", SESSION_LIFETIME)[1]

    secret = await run_in_threadpool(start_session)
    response = RedirectResponse(_local_target(next), status_code=303)
    set_session(request, response, secret)
    return response


@router.post("/logout", dependencies=[CsrfDep])
def logout(request: Request) -> Response:
    """End the session: its token is revoked, not just forgotten by the browser."""
    secret = session_secret(request)
    identity = _backend(request).governance.identity
    # The UI serves the server's own store: its identity service, which signs sessions out.
    tokens = request.app.state.settings.auth == "tokens"
    if isinstance(identity, IdentityService) and secret is not None and tokens:
        identity.sign_out(secret)
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response


# home -------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    """What is there: experiments, models, pipelines, firing alerts, the audit head."""
    backend = _backend(request)
    experiments = backend.tracking.list_experiments()
    models = backend.registry.list_models()
    pipelines = backend.pipelines.store.list_pipelines() if backend.pipelines else []
    alerts = _alerts(backend, status="firing")
    return render(
        request,
        "home.html",
        experiments=experiments,
        models=models,
        pipelines=pipelines,
        alerts=alerts,
    )


# runs -------------------------------------------------------------------------------------


_MENTION = re.compile(r"\b(metrics|params)\.(`[^`]+`|\"[^\"]+\"|[\w.\-]+)")


_QUOTES = '`"'


def _columns(runs: list[Run], chosen: list[str], query: str) -> tuple[list[str], list[str]]:
    """(available, shown) metric and param columns. Shown defaults to what the filter and
    the order mention, then the first few metrics and params of the page."""
    metrics = sorted({k for r in runs for k in r.metrics})
    params = sorted({k for r in runs for k in r.params})
    available = [f"metrics.{k}" for k in metrics] + [f"params.{k}" for k in params]
    if chosen:
        return sorted(set(available) | set(chosen)), chosen
    mentioned = [e + "." + k.strip(_QUOTES) for e, k in _MENTION.findall(query)]
    default = [f"metrics.{k}" for k in metrics[:5]] + [f"params.{k}" for k in params[:3]]
    return available, list(dict.fromkeys(mentioned + default))[:10]


def _quote(column: str) -> str:
    entity, _, key = column.partition(".")
    return f"{entity}.`{key}`" if not key.isidentifier() else column


@router.get("/runs")
def runs_page(
    request: Request,
    experiment: str = "",
    filter: str = "",
    order: str = "",
    page: str | None = None,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
    col: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Runs: filtered, sorted and paged in SQL, with a column chooser."""
    backend = _backend(request)
    experiments = backend.tracking.list_experiments()
    error = None
    try:
        found = backend.tracking.search_runs(
            experiment or None,
            filter or None,
            [order] if order else None,
            max_results=size,
            page_token=page,
        )
        runs, next_page = found.runs, found.next_page_token
    except (InvalidInputError, NotFoundError) as exc:
        runs, next_page, error = [], None, exc.message
    names = {e.id: e.name for e in experiments}
    available, shown = _columns(
        runs, [c for c in col or [] if c.startswith(("metrics.", "params."))], f"{filter} {order}"
    )
    here = {"experiment": experiment, "filter": filter, "size": size, "col": col or []}
    return render(
        request,
        "runs.html",
        "runs",
        status=400 if error else 200,
        runs=runs,
        experiments=experiments,
        names=names,
        experiment=experiment,
        filter=filter,
        order=order,
        size=size,
        sizes=PAGE_SIZES,
        available=available,
        shown=shown,
        error=error,
        next_url=_url("/runs", {**here, "order": order, "page": next_page}) if next_page else None,
        sort_link=lambda column: _sort_link(here, order, column),
        chosen=list(col or []),
    )


def _sort_link(here: dict[str, Any], order: str, column: str) -> tuple[str, str]:
    """The link that sorts by ``column`` (descending first, then flips) and its mark."""
    key, _, direction = order.strip().rpartition(" ")
    if direction.upper() not in ("ASC", "DESC"):
        key, direction = order.strip(), "ASC"
    active = key in (column, _quote(column))
    descending = direction.upper() == "DESC"
    flip = "ASC" if active and descending else "DESC"
    mark = ("▼" if descending else "▲") if active else ""
    return _url("/runs", {**here, "order": f"{_quote(column)} {flip}"}), mark


def _url(path: str, query: Mapping[str, Any]) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((key, str(v)) for v in values if v not in (None, ""))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def _value(run: Run, column: str) -> Any:
    entity, _, key = column.partition(".")
    return run.metrics.get(key) if entity == "metrics" else run.params.get(key)


ENV.globals["cell"] = _value


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str) -> Response:
    """One run: params, metrics with their full curves, tags, artifacts."""
    tracking = _backend(request).tracking
    run = tracking.get_run(run_id)
    charts = []
    for key in sorted(run.metrics):
        history = tracking.get_metric_history(run.id, key)
        if len(history) > 1:
            points = {float(m.step): m.value for m in history}
            xs, series = _aligned({key: points})
            charts.append((key, len(history), _chart(xs, series, "step")))
    artifacts = tracking.list_artifacts(run.id)
    return render(
        request,
        "run.html",
        "runs",
        run=run,
        experiment=tracking.get_experiment(run.experiment_id),
        charts=charts,
        artifacts=artifacts,
        search=_search(tracking, run),
        federated=_federated(tracking, run, artifacts),
    )


def _federated(tracking: TrackingService, run: Run, artifacts: list[Any]) -> dict[str, Any] | None:
    """A federated job's rounds: ROC AUC of the global model on each silo's held-out rows,
    by round, beside the row-weighted whole; and each silo's data fingerprint."""
    from shipyard.registry.card import FEDERATED_REPORT

    if not any(a.name == FEDERATED_REPORT for a in artifacts):
        return None
    try:
        report = json.loads(tracking.read_artifact_bytes(run.id, FEDERATED_REPORT))
        rounds = list(report.get("rounds") or [])
        silos = dict(report.get("silos") or {})
    except (ValueError, TypeError, AttributeError):
        return None
    curves: dict[str, dict[float, float]] = {"all silos": {}}
    for entry in rounds:
        r = float(entry.get("round", 0))
        if "roc_auc" in (entry.get("global") or {}):
            curves["all silos"][r] = float(entry["global"]["roc_auc"])
        for silo, metrics in (entry.get("silos") or {}).items():
            if isinstance(metrics.get("roc_auc"), (int, float)):
                curves.setdefault(silo, {})[r] = float(metrics["roc_auc"])
    xs, series = _aligned(curves)
    final = report.get("final") or {}
    return {
        "chart": _chart(xs, series, "round"),
        "rounds": len(rounds),
        "strategy": (report.get("job") or {}).get("strategy"),
        "runtime": report.get("runtime"),
        "privacy": report.get("privacy_statement"),
        "silos": [
            {
                "name": name,
                "sha256": str((info.get("fingerprint") or {}).get("sha256", "")),
                "rows": (info.get("fingerprint") or {}).get("rows"),
                **{
                    k: (final.get(name) or {}).get(k)
                    for k in ("roc_auc", "true_positive_rate", "false_positive_rate")
                },
            }
            for name, info in sorted(silos.items())
        ],
    }


def _search(tracking: TrackingService, run: Run) -> dict[str, Any] | None:
    """An AutoML search run's trials: the score of each and the best so far, by trial."""
    from shipyard.automl.trials import STATE_TAG, STUDY_TAG, TRIAL_TAG

    study = run.tags.get(STUDY_TAG)
    if not study or run.parent_id is not None or not re.fullmatch(r"[\w.-]+", study):
        return None
    metric = run.params.get("metric", "")
    key = "cv_" + metric.replace(":", "_at_")
    found = tracking.search_runs(
        [run.experiment_id], filter=f"tags.`{STUDY_TAG}` = '{study}'", max_results=1000
    )
    trials = sorted(
        (r for r in found if r.parent_id == run.id and TRIAL_TAG in r.tags),
        key=lambda r: int(r.tags[TRIAL_TAG]),
    )
    higher = not metric.startswith(("log_loss", "rmse", "mae"))
    xs: list[float] = []
    scores: list[float | None] = []
    best: list[float | None] = []
    leader: float | None = None
    for trial in trials:
        score = trial.metrics.get(key) if trial.tags.get(STATE_TAG) == "COMPLETE" else None
        if (
            score is not None
            and _feasible(trial)
            and (leader is None or (score > leader) == higher)
        ):
            leader = score
        xs.append(float(trial.tags[TRIAL_TAG]))
        scores.append(score)
        best.append(leader)
    ranked = sorted(
        (
            t
            for t in trials
            if key in t.metrics and t.tags.get(STATE_TAG) == "COMPLETE" and _feasible(t)
        ),
        key=lambda t: t.metrics[key],
        reverse=higher,
    )
    return {
        "metric": metric,
        "key": key,
        "trials": len(trials),
        "states": {s: sum(t.tags.get(STATE_TAG) == s for t in trials) for s in _TRIAL_STATES},
        "chart": _chart(xs, {f"trial {metric}": scores, "best so far": best}, "trial"),
        "leaders": ranked[:10],
    }


_TRIAL_STATES = ("COMPLETE", "PRUNED", "INTERRUPTED", "FAILED")


def _feasible(trial: Run) -> bool:
    """Whether a trial met the search's constraints (the best and the leaders must)."""
    return trial.tags.get("shipyard.automl.feasible", "True") == "True"


@router.get("/compare")
def compare_page(request: Request, run: Annotated[list[str] | None, Query()] = None) -> Response:
    """2-10 runs side by side: overlaid curves of shared metrics and a params diff."""
    ids = list(dict.fromkeys(run or []))
    if not 2 <= len(ids) <= 10:
        raise InvalidInputError(
            f"compare 2 to 10 runs; got {len(ids)} (tick them in the runs table)"
        )
    tracking = _backend(request).tracking
    runs = [tracking.get_run(i) for i in ids]
    metrics = sorted(set.intersection(*(set(r.metrics) for r in runs)))
    charts = []
    for key in metrics:
        curves = {
            f"{r.name} ({r.id[-6:]})": {
                float(m.step): m.value for m in tracking.get_metric_history(r.id, key)
            }
            for r in runs
        }
        xs, series = _aligned(curves)
        charts.append((key, _chart(xs, series, "step")))
    params = sorted({k for r in runs for k in r.params})
    rows = [(k, [r.params.get(k) for r in runs]) for k in params]
    all_metrics = sorted({k for r in runs for k in r.metrics})
    return render(
        request,
        "compare.html",
        "runs",
        runs=runs,
        charts=charts,
        params=rows,
        metrics=[(k, [r.metrics.get(k) for r in runs]) for k in all_metrics],
    )


# pipelines --------------------------------------------------------------------------------


@router.get("/pipelines")
def pipelines_page(request: Request, pipeline: str = "") -> Response:
    """Pipelines and their latest runs."""
    parts = _backend(request).pipelines
    if parts is None:
        raise NotFoundError("this store keeps no pipeline runs")
    runs = parts.store.list_pipeline_runs(pipeline or None, 100)
    return render(
        request,
        "pipelines.html",
        "pipelines",
        pipelines=parts.store.list_pipelines(),
        runs=runs,
        counts=parts.store.step_counts([r.id for r in runs]),
        pipeline=pipeline,
    )


@router.get("/pipelines/runs/{run_id}")
def pipeline_run_page(request: Request, run_id: str) -> Response:
    """One pipeline run: the DAG with status, durations and cache hits; step tracebacks."""
    parts = _backend(request).pipelines
    if parts is None:
        raise NotFoundError("this store keeps no pipeline runs")
    record = parts.store.get_pipeline_run(run_id)
    producer = {o.digest: s.step for s in record.steps for o in s.outputs}
    boxes = [
        Box(
            s.step,
            s.step,
            f"{s.status.value.lower()} · {duration(s.started_at, s.ended_at)}",
            kind=s.status.value.lower(),
            href=f"#step-{s.step}",
        )
        for s in record.steps
    ]
    edges = sorted(
        {(producer[d], s.step, "") for s in record.steps for d in s.inputs if d in producer}
    )
    tracking = _backend(request).tracking
    logs: dict[str, str] = {}
    for s in record.steps:
        if s.run_id is None:
            continue
        with contextlib.suppress(NotFoundError):
            if any(a.name == LOG_ARTIFACT for a in tracking.list_artifacts(s.run_id)):
                text = tracking.read_artifact_bytes(s.run_id, LOG_ARTIFACT).decode(
                    "utf-8", "replace"
                )
                logs[s.step] = text[-LOG_TAIL:]
    return render(
        request,
        "pipeline_run.html",
        "pipelines",
        logs=logs,
        log_tail=LOG_TAIL,
        record=record,
        drawing=layout(boxes, list(edges)),
        node_w=NODE_W,
        node_h=NODE_H,
    )


# models -----------------------------------------------------------------------------------


@router.get("/models")
def models_page(request: Request) -> Response:
    """Registered models with their aliases and newest version."""
    registry = _backend(request).registry
    models = [(m, registry.list_versions(m.name)) for m in registry.list_models()]
    return render(request, "models.html", "models", models=models)


@router.get("/models/{name}")
def model_page(request: Request, name: str) -> Response:
    """A model's versions, aliases and lifecycle states."""
    registry = _backend(request).registry
    model = registry.get_model(name)
    versions = list(reversed(registry.list_versions(name)))
    return render(request, "model.html", "models", model=model, versions=versions)


@router.get("/models/{name}/versions/{version}")
def version_page(request: Request, name: str, version: int, done: str = "") -> Response:
    """A version: card, signature, gate reports, approval requests with approve/reject."""
    backend = _backend(request)
    mv = backend.registry.get_version(name, version)
    reports = list(reversed(backend.gates.reports(name, mv.version)))
    requests = list(reversed(backend.governance.approvals.requests(name, mv.version)))
    model = backend.registry.get_model(name)
    return render(
        request,
        "version.html",
        "models",
        mv=mv,
        model=model,
        reports=reports,
        requests=requests,
        open_request=next((r for r in requests if r.status == "open"), None),
        done=done,
    )


def _decide(request: Request, name: str, version: int, note: str, approve: bool) -> Response:
    actor = current_actor(request)
    approvals = _backend(request).governance.approvals
    with acting_as(actor.name, actor.role):
        if approve:
            approvals.approve(name, version, note=note)
        else:
            approvals.reject(name, version, note=note)
    verdict = "approved" if approve else "rejected"
    return RedirectResponse(f"/models/{name}/versions/{version}?done={verdict}", status_code=303)


@router.post("/models/{name}/versions/{version}/request-promotion", dependencies=[CsrfDep])
def request_promotion(
    request: Request, name: str, version: int, note: Annotated[str, Form()] = ""
) -> Response:
    """Ask for promotion to production (needs a passing gate report the store computed)."""
    actor = current_actor(request)
    with acting_as(actor.name):
        _backend(request).governance.approvals.request(name, version, note=note)
    return RedirectResponse(f"/models/{name}/versions/{version}?done=requested", status_code=303)


@router.post("/models/{name}/versions/{version}/approve", dependencies=[CsrfDep])
def approve(
    request: Request, name: str, version: int, note: Annotated[str, Form()] = ""
) -> Response:
    """Approve the open promotion request (approver role; never the author or trainer)."""
    return _decide(request, name, version, note, approve=True)


@router.post("/models/{name}/versions/{version}/reject", dependencies=[CsrfDep])
def reject(
    request: Request, name: str, version: int, note: Annotated[str, Form()] = ""
) -> Response:
    """Reject the open promotion request."""
    return _decide(request, name, version, note, approve=False)


# deployments and monitors -----------------------------------------------------------------


def _alerts(backend: Backend, monitor: str | None = None, status: str | None = None) -> list[Any]:
    service = backend.monitor_service
    return service.list_alerts(monitor, status) if service is not None else []


def _deployments(backend: Backend) -> dict[str, dict[str, Any]]:
    """Each deployment's newest start or swap event (the audit log is their record)."""
    found: dict[str, dict[str, Any]] = {}
    for event in backend.governance.audit.events(action="deployment."):
        if event.object.startswith("deployment:"):
            name = event.object.removeprefix("deployment:")
            entry = found.setdefault(name, {"name": name, "events": []})
            entry["events"].append(event)
            if event.action == "deployment.started":
                entry["latest"] = event
                entry["served"] = _split(event.payload)
            elif event.action == "deployment.swapped":
                role, to = event.payload.get("role"), event.payload.get("to")
                for served in entry.get("served", []):
                    if served["role"] == role:
                        served["label"] = to
    return found


def _split(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The traffic split a deployment started with: primary, canary, shadows (mirrored)."""
    versions = payload.get("versions") or {}
    canary_share = float(payload.get("canary_percent") or 0) / 100 if payload.get("canary") else 0
    parts: list[tuple[str, Any, float | None]] = [
        ("primary", payload.get("model"), 1 - canary_share)
    ]
    if payload.get("canary"):
        parts.append(("canary", payload["canary"], canary_share))
    parts.extend(("shadow", uri, None) for uri in payload.get("shadows") or [])
    served = []
    for role, uri, weight in parts:
        if not isinstance(uri, str):
            continue
        name = uri.removeprefix("models:/").split("/")[0].split("@")[0]
        version = versions.get(uri)
        label = f"{name} v{version}" if version is not None else uri
        served.append(
            {
                "role": role,
                "uri": uri,
                "name": name,
                "version": version,
                "label": label,
                "weight": weight,
            }
        )
    return served


@router.get("/deployments")
def deployments_page(request: Request) -> Response:
    """Deployments: what they serve, the traffic split, request rate and latency over time."""
    backend = _backend(request)
    deployments = _deployments(backend)
    latest = backend.monitor_service.latest() if backend.monitor_service else []
    charts: dict[str, list[tuple[str, str]]] = {}
    for result in latest:
        name = result.get("deployment")
        if name is None:
            continue
        deployments.setdefault(name, {"name": name, "events": []})
        history = (
            backend.monitor_service.history(result["monitor"]) if backend.monitor_service else []
        )
        xs = [float(_epoch(r.get("window_start"))) for r in history]
        health = [r.get("health") or {} for r in history]
        charts[name] = [
            (
                "requests per second",
                _chart(xs, {"requests/s": [h.get("requests_per_second") for h in health]}, "time"),
            ),
            (
                "latency (s)",
                _chart(
                    xs,
                    {p: [h.get(f"latency_{p}") for h in health] for p in ("p50", "p95", "p99")},
                    "time",
                ),
            ),
        ]
    return render(
        request, "deployments.html", "deployments", deployments=deployments, charts=charts
    )


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) / (1000 if value > 1e11 else 1)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


@router.get("/edge")
def edge_page(request: Request) -> Response:
    """Device groups: each rollout's share, and how many devices report running each bundle;
    the bundles kept, their size and latency against the native model."""
    edge = _backend(request).edge
    devices = edge.devices()
    groups: dict[str, dict[str, Any]] = {}
    for rollout in edge.rollouts():
        group = groups.setdefault(rollout.group, {"rollouts": [], "running": {}, "devices": 0})
        group["rollouts"].append(rollout)
    for device in devices:
        group = groups.setdefault(device.group, {"rollouts": [], "running": {}, "devices": 0})
        key = device.bundle_id or "none"
        group["running"][key] = group["running"].get(key, 0) + 1
        group["devices"] += 1
    bundles = [_bundle_row(b) for b in edge.bundles()]
    return render(request, "edge.html", "edge", groups=groups, bundles=bundles)


@router.get("/edge/bundles/{bundle_id}")
def edge_bundle_page(request: Request, bundle_id: str) -> Response:
    """One bundle's export report: every variant measured, why each passed or failed."""
    record = _backend(request).edge.get_bundle(bundle_id)
    report = record.report
    native = report.get("native") or {}
    measured = [v for v in report.get("variants", []) if v.get("measured")]
    largest = max([native.get("size_bytes") or 0, *(v["measured"]["size_bytes"] for v in measured)])
    slowest = max([native.get("p99_ms") or 0, *(v["measured"]["p99_ms"] for v in measured)])
    return render(
        request,
        "edge_bundle.html",
        "edge",
        bundle=record,
        report=report,
        largest=largest or 1,
        slowest=slowest or 1,
    )


def _bundle_row(record: Any) -> dict[str, Any]:
    report = record.report
    native = report.get("native") or {}
    chosen: dict[str, Any] = next(
        (v for v in report.get("variants", []) if v["name"] == record.variant), {}
    )
    measured = chosen.get("measured") or {}
    return {
        "record": record,
        "native_kb": (native.get("size_bytes") or 0) / 1000,
        "kb": (measured.get("size_bytes") or 0) / 1000,
        "p99": measured.get("p99_ms"),
        "native_p99": native.get("p99_ms"),
        "drop": measured.get("metric_drop"),
        "metric": report.get("metric"),
    }


@router.get("/monitors")
def monitors_page(request: Request) -> Response:
    """Every monitor's newest window and the alerts."""
    backend = _backend(request)
    latest = backend.monitor_service.latest() if backend.monitor_service else []
    return render(request, "monitors.html", "monitors", latest=latest, alerts=_alerts(backend))


@router.get("/monitors/{name}")
def monitor_page(request: Request, name: str, window: int | None = None) -> Response:
    """Drift per feature over time, reference vs current histograms, quality, performance."""
    backend = _backend(request)
    history = backend.monitors.history(name)
    xs = [_epoch(r.get("window_start")) for r in history]
    features = sorted(
        {c["column"] for r in history for c in (r.get("drift") or {}).get("columns", [])}
    )

    def stat(r: dict[str, Any], feature: str) -> float | None:
        for c in (r.get("drift") or {}).get("columns", []):
            if c["column"] == feature:
                value = c.get("psi") if c.get("psi") is not None else c.get("statistic")
                return float(value) if value is not None else None
        return None

    drift_chart = _chart(xs, {f: [stat(r, f) for r in history] for f in features}, "time")
    share_chart = _chart(
        xs, {"drift share": [(r.get("drift") or {}).get("drift_share") for r in history]}, "time"
    )
    metric_names = sorted(
        {m for r in history for m in ((r.get("performance") or {}).get("metrics") or {})}
    )
    perf_chart = _chart(
        xs,
        {
            m: [((r.get("performance") or {}).get("metrics") or {}).get(m) for r in history]
            for m in metric_names
        },
        "time",
    )
    with_data = [i for i, r in enumerate(history) if r.get("status") != "no_data"] or [
        len(history) - 1
    ]
    chosen = window if window is not None and 0 <= window < len(history) else with_data[-1]
    return render(
        request,
        "monitor.html",
        "monitors",
        name=name,
        history=history,
        chosen=chosen,
        current=history[chosen],
        drift_chart=drift_chart,
        share_chart=share_chart,
        perf_chart=perf_chart if metric_names else None,
        bars=lambda hist, label: Markup(bars_svg(hist, label=label)),  # noqa: S704 (escaped inside)
        alerts=_alerts(backend, name),
    )


# lineage ----------------------------------------------------------------------------------


def _node_link(node: str) -> str:
    return "/lineage?" + urlencode({"node": node})


def _node_label(node: str) -> tuple[str, str]:
    kind, _, rest = node.partition(":")
    if kind == "artifact" and len(rest) > 16:
        rest = rest[:12] + "…"
    if kind == "run" and len(rest) > 20:
        rest = "…" + rest[-12:]
    return kind, rest


@router.get("/lineage")
def lineage_page(request: Request, node: str = "") -> Response:
    """A lineage graph from any object: a model version, a dataset's sha256 or a run."""
    backend = _backend(request)
    if not node:
        return render(request, "lineage.html", "lineage", node="", drawing=None, details={})
    node = node.strip()
    uri = node if node.startswith("models:/") else None
    if node.startswith("model:"):
        uri = "models:/" + node.removeprefix("model:")
    if len(node) == 64 and all(c in "0123456789abcdef" for c in node):
        node = f"artifact:{node}"
    details: dict[str, dict[str, Any]] = {}
    if uri is not None:
        found = model_lineage(
            backend.registry,
            backend.gates,
            backend.governance.approvals,
            backend.pipelines.store if backend.pipelines else None,
            uri,
        )
        graph = found.graph()
        node = found.node
        details = {n["id"]: {k: v for k, v in n.items() if k != "id"} for n in graph["nodes"]}
        edges = [(e["source"], e["target"], e["relation"] or "") for e in graph["edges"]]
        nodes = list(details)
    else:
        if backend.pipelines is None:
            raise NotFoundError("this store keeps no lineage")
        edges = []
        nodes = [node]
        for direction in ("upstream", "downstream"):
            tree = lineage_tree(backend.pipelines.store, node, direction)
            stack = [tree]
            while stack:
                parent = stack.pop()
                for child in parent.children:
                    nodes.append(child.node)
                    pair = (
                        (child.node, parent.node)
                        if direction == "upstream"
                        else (parent.node, child.node)
                    )
                    edges.append((*pair, child.relation or ""))
                    stack.append(child)
        if len(nodes) == 1 and not node.startswith(("run:", "artifact:", "dataset:")):
            raise NotFoundError(f"no lineage recorded for {node!r}")
    boxes = []
    for n in dict.fromkeys(nodes):
        kind, label = _node_label(n)
        known = details.get(n, {})
        kind = str(known.get("kind") or kind)
        label = str(known.get("name") or label)
        boxes.append(Box(n, label, kind, kind=kind, href=_node_link(n), focus=n == node))
    return render(
        request,
        "lineage.html",
        "lineage",
        node=node,
        drawing=layout(boxes, edges),
        details=details,
        node_w=NODE_W,
        node_h=NODE_H,
        links=_object_links(node),
    )


def _object_links(node: str) -> list[tuple[str, str]]:
    kind, _, rest = node.partition(":")
    if kind == "model" and "/" in rest:
        name, _, version = rest.partition("/")
        return [(f"/models/{name}/versions/{version}", f"model version {name} v{version}")]
    if kind == "run":
        return [(f"/runs/{rest}", "the run")]
    return []


# the project spec -------------------------------------------------------------------------


@router.get("/project")
def project_page(request: Request) -> Response:
    """The project as code: the last apply, what changed outside the spec since (by whom,
    when), and every object the spec manages."""
    backend = _backend(request)
    spec = backend.spec
    applies = backend.governance.audit.events(
        obj="spec:project", action="spec.applied", limit=10, newest_first=True
    )
    drift = spec.drift()
    drifted = {(d.kind, d.name) for d in drift}
    live = spec.live()
    managed = sorted(
        (
            {"kind": kind, "name": name, "drifted": (kind, name) in drifted}
            for (kind, name) in live
            if kind != "Experiment"  # every run's experiment: counted, not listed
        ),
        key=lambda o: (o["kind"], o["name"]),
    )
    experiments = sum(1 for kind, _ in live if kind == "Experiment")
    return render(
        request,
        "project.html",
        "project",
        applies=applies,
        drift=drift,
        objects=managed,
        experiments=experiments,
        value=lambda v: json.dumps(v, sort_keys=True, default=str)[:200],
    )


# audit ------------------------------------------------------------------------------------


@router.get("/audit")
def audit_page(
    request: Request,
    action: str = "",
    actor: str = "",
    obj: str = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    verify: bool = False,
) -> Response:
    """The audit log, filterable, with the chain's verification status and head hash."""
    audit = _backend(request).governance.audit
    shown = audit.events(
        obj=obj or None,
        action=action or None,
        actor=actor or None,
        limit=limit + 1,
        newest_first=True,
    )
    more = len(shown) > limit
    shown = shown[:limit]
    check = audit.verify() if verify else None
    newest = audit.events(limit=1, newest_first=True)
    return render(
        request,
        "audit.html",
        "audit",
        events=shown,
        more=more,
        action=action,
        actor_filter=actor,
        obj=obj,
        limit=limit,
        check=check,
        head=newest[0] if newest else None,
        payload=lambda p: json.dumps(p, sort_keys=True, default=str)[:400],
    )


def page_routes() -> Iterable[str]:
    """Paths of the UI's pages (tests walk them)."""
    return [getattr(r, "path", "") for r in router.routes]
