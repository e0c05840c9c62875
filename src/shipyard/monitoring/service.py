"""Run a monitor over one window of production traffic and keep the result.

A window's result holds: data quality of the inputs (nulls, values outside the reference's
range, categories never seen, missing columns, volume), drift per feature and of the score
against the prepared reference, performance where labels have arrived (joined by request
id), fairness by group when the sensitive column was logged, and system health (latency
percentiles and throughput per version, and the error rate from the failed requests the
model server logs). Re-running a window gives the same result and
replaces the stored one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.audit import NULL_AUDIT, AuditLog
from shipyard.core.blobs import BlobStore
from shipyard.core.clock import now_ms
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.hashing import is_digest
from shipyard.core.jsonsafe import finite
from shipyard.drift.engine import PSI_BANDS, PreparedReference
from shipyard.gates.metrics import metric_value
from shipyard.gates.service import GateService
from shipyard.monitoring.alerts import Alert, AlertService, AlertStore, LineageEdges, Notifier
from shipyard.monitoring.ports import (
    FeedbackStore,
    MonitorResultStore,
    PredictionSource,
    Retrainer,
)
from shipyard.monitoring.spec import BLOB, MonitorSpec

SCORE = "output.proba_1"
INPUT = "input."


@dataclass
class _Reference:
    frame: pd.DataFrame
    prepared: PreparedReference
    score: np.ndarray[Any, Any] | None
    label: str


def window_of(spec: MonitorSpec, moment: datetime) -> tuple[datetime, datetime]:
    """The window (aligned to its length since the epoch) that contains ``moment``."""
    length = spec.window.seconds
    start = int(moment.timestamp()) // length * length
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + timedelta(seconds=length)


def _check(
    name: str, kind: str, ok: bool, value: float | None, limit: str, message: str
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "status": "passed" if ok else "failed",
        "value": None if value is None or not math.isfinite(value) else value,
        "threshold": limit,
        "message": message,
    }


class MonitorService:
    """Evaluate monitors and keep their history."""

    def __init__(
        self,
        predictions: PredictionSource,
        feedback: FeedbackStore,
        results: MonitorResultStore,
        gates: GateService,
        *,
        alerts: AlertStore | None = None,
        notifiers: Callable[[MonitorSpec], dict[str, Notifier]] | None = None,
        audit: AuditLog | None = None,
        blobs: BlobStore | None = None,
        lineage: LineageEdges | None = None,
    ) -> None:
        self.predictions = predictions
        self.feedback = feedback
        self.results = results
        self.gates = gates
        self.alerts = alerts
        self.notifiers = notifiers
        self.audit: AuditLog = audit or NULL_AUDIT
        #: Reference files sent through a server are blobs (``blob:<sha256>``).
        self.blobs = blobs
        self.lineage = lineage
        #: Starts a retraining pipeline ("module:pipeline") for a firing alert; set by the
        #: surface that can run pipelines (CLI, SDK). Returns the pipeline run id.
        self.retrain: Retrainer | None = None
        self._references: dict[tuple[str, str], _Reference] = {}

    # the reference, prepared once per monitor -----------------------------------------------

    def reference(self, spec: MonitorSpec, features: list[str]) -> _Reference:
        """The monitor's reference, prepared on first use and kept."""
        key = (spec.name, f"{spec.model}|{spec.reference.model_dump_json()}")
        cached = self._references.get(key)
        if cached is not None:
            return cached
        score = None
        if spec.reference.kind == "window":
            start, end = spec.reference.start, spec.reference.end
            past = self.predictions.predictions(spec.deployment, since=start, until=end)
            if len(past) == 0:
                raise InvalidInputError(
                    f"the reference window {start} - {end} of {spec.deployment!r} has no traffic"
                )
            frame = pd.DataFrame(
                {
                    c.removeprefix(INPUT): past[c].to_numpy()
                    for c in past.columns
                    if c.startswith(INPUT)
                }
            )
            if SCORE in past.columns:
                score = past[SCORE].to_numpy(dtype=float)
            present = [f for f in features if f in frame.columns]
            made = _Reference(frame, PreparedReference.of(frame, present), score, "")
            self._references[key] = made
            return made
        if spec.reference.kind == "file":
            if not spec.reference.path:
                raise InvalidInputError("reference kind file needs a path")
            frame = self._reference_file(spec.reference.path)
        else:
            if spec.model is None:
                raise InvalidInputError(
                    "a training reference needs the monitor's model (model: models:/NAME@champion)"
                )
            mv = self.gates.registry.resolve(spec.model)
            found = self.gates.training_data(mv.name, mv.version)
            if found is None:
                raise InvalidInputError(
                    f"{mv.uri} was registered without training data: register it with "
                    "training_data=... or give the monitor a reference file"
                )
            frame = found
            model, _ = self.gates.registry.load(mv.uri)
            if spec.drift is not None and spec.drift.score and hasattr(model, "predict_proba"):
                names = list(model.signature.input_names)
                if all(n in frame.columns for n in names):
                    proba = np.asarray(model.predict_proba(frame[names]))
                    if proba.ndim == 2 and proba.shape[1] == 2:
                        score = proba[:, 1]
        present = [f for f in features if f in frame.columns]
        prepared = PreparedReference.of(frame, present)
        made = _Reference(frame, prepared, score, "")
        self._references[key] = made
        return made

    def _reference_file(self, where: str) -> pd.DataFrame:
        """A reference table from a local file (.parquet, else CSV) or a stored blob."""
        if where.startswith(BLOB):
            digest = where.removeprefix(BLOB)
            if self.blobs is None or not is_digest(digest) or not self.blobs.exists(digest):
                raise InvalidInputError(f"reference {where} is not a stored blob")
            data = b"".join(self.blobs.read_chunks(digest))
            buffer = io.BytesIO(data)
            return pd.read_parquet(buffer) if data[:4] == b"PAR1" else pd.read_csv(buffer)
        path = Path(where)
        if not path.is_file():
            raise InvalidInputError(f"reference file {path} does not exist")
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)

    # one window -------------------------------------------------------------------------------

    def run_latest(self, spec: MonitorSpec, until: datetime) -> dict[str, Any]:
        """For ``window: {rows: N}``: evaluate the last N predictions before ``until``; the
        window is the span of their timestamps, so re-running gives the same window."""
        count = spec.window.rows
        if count is None:
            raise InvalidInputError("run_latest needs a monitor with window.rows")
        logged = self.predictions.predictions(spec.deployment, until=until, columns=["timestamp"])
        if len(logged) == 0:
            return self.run(spec, until - timedelta(seconds=1), until)
        stamps = pd.to_datetime(logged["timestamp"], utc=True).sort_values()
        start = stamps.iloc[max(0, len(stamps) - count)].to_pydatetime()
        end = stamps.iloc[-1].to_pydatetime() + timedelta(milliseconds=1)
        return self.run(spec, start, end)

    def run(self, spec: MonitorSpec, start: datetime, end: datetime) -> dict[str, Any]:
        """Evaluate one window and store its result (replacing an earlier one)."""
        if end <= start:
            raise InvalidInputError("a window must end after it starts")
        logged = self.predictions.predictions(spec.deployment, since=start, until=end)
        base: dict[str, Any] = {
            "monitor": spec.name,
            "deployment": spec.deployment,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "rows": len(logged),
            "requests": int(logged["request_id"].nunique()) if len(logged) else 0,
        }
        failures = self.predictions.failures(spec.deployment, since=start, until=end)
        base["failed_requests"] = len(failures)
        if len(logged) == 0 and len(failures) == 0:
            result = {
                **base,
                "status": "no_data",
                "checks": [],
                "message": "no traffic in this window: nothing to judge",
            }
            return self._save(spec, start, end, result)
        if len(logged) == 0:  # every request failed: nothing to profile, much to say
            health: dict[str, Any] = {}
            found = self._server_health(spec, health, logged, failures)
            result = {
                **base,
                "health": health,
                "checks": found,
                "status": "alert" if any(c["status"] == "failed" for c in found) else "ok",
                "message": f"all {len(failures)} requests in this window failed",
            }
            return self._save(spec, start, end, result)
        logged = logged.sort_values(["timestamp", "request_id", "row"], kind="stable")
        inputs = sorted(c.removeprefix(INPUT) for c in logged.columns if c.startswith(INPUT))
        features = spec.features or inputs
        current = pd.DataFrame(
            {f: logged[INPUT + f].to_numpy() for f in features if INPUT + f in logged.columns}
        )
        checks: list[dict[str, Any]] = []
        missing = [f for f in features if f not in current.columns]
        if missing:
            checks.append(
                _check(
                    "schema",
                    "quality",
                    False,
                    float(len(missing)),
                    "0 missing",
                    f"features never logged: {', '.join(missing)}",
                )
            )
        ref = self.reference(spec, list(current.columns))
        result = {**base, "health": _health(logged, start, end)}
        checks += self._server_health(spec, result["health"], logged, failures)
        if spec.quality is not None:
            quality, found = _quality(spec, ref, current, len(logged))
            result["quality"] = quality
            checks += found
        if spec.drift is not None:
            usable = [c for c in ref.prepared.columns if c in current.columns]
            prepared = PreparedReference(
                {c: ref.prepared.columns[c] for c in usable}, ref.prepared.rows
            )
            report = prepared.compare(
                current[usable],
                method=spec.drift.method,
                threshold=spec.drift.threshold,
                drift_share=spec.drift.drift_share,
            )
            drift = report.to_dict()
            drift["histograms"] = {c: _histogram(prepared.columns[c], current[c]) for c in usable}
            drifted = report.drifted_columns
            checks.append(
                _check(
                    "feature_drift",
                    "drift",
                    not report.dataset_drift,
                    report.drift_share,
                    f"drifted share < {spec.drift.drift_share:g}",
                    f"{len(drifted)} of {len(report.columns)} features drifted"
                    + (f": {', '.join(drifted)}" if drifted else ""),
                )
            )
            if ref.score is not None and SCORE in logged.columns:
                score_ref = PreparedReference.of(pd.DataFrame({"score": ref.score}))
                score = score_ref.compare(
                    pd.DataFrame({"score": logged[SCORE].to_numpy()}), method=spec.drift.method
                ).columns[0]
                drift["score"] = score.__dict__
                checks.append(
                    _check(
                        "score_drift",
                        "drift",
                        not score.drifted,
                        score.statistic,
                        f"{score.method} threshold {score.threshold:g}",
                        f"prediction score {score.method} {score.statistic:.4f}, "
                        f"PSI {score.psi:.3f}",
                    )
                )
            result["drift"] = drift
        if spec.performance is not None:
            performance, found = self._performance(spec, logged)
            result["performance"] = performance
            checks += found
        result["checks"] = checks
        result["status"] = "alert" if any(c["status"] == "failed" for c in checks) else "ok"
        return self._save(spec, start, end, result)

    def _server_health(
        self,
        spec: MonitorSpec,
        health: dict[str, Any],
        logged: pd.DataFrame,
        failures: pd.DataFrame,
    ) -> list[dict[str, Any]]:
        """Latency against its limit, and the error rate of this window: failed requests
        (the model server logs them apart from predictions) over all requests answered."""
        found = []
        limit = spec.health.max_latency_p99
        if limit is not None and "latency_p99" in health:
            p99 = health["latency_p99"]
            found.append(
                _check(
                    "latency_p99",
                    "health",
                    p99 <= limit,
                    p99,
                    f"<= {limit:g} s",
                    f"p99 latency {p99 * 1000:.1f} ms",
                )
            )
        answered: set[str] = set()
        if len(logged):
            answered = set(logged.loc[logged["role"] != "shadow", "request_id"].astype(str))
        failed = failures[failures["role"] != "shadow"] if len(failures) else failures
        errors, total = len(failed), len(answered) + len(failed)
        if total:
            by_code: dict[str, int] = {}
            if errors:
                counts = failed["status"].astype(int).value_counts().sort_index()
                by_code = {str(code): int(n) for code, n in counts.items()}
            rate = errors / total
            health.update(error_rate=rate, failed_requests=errors, errors_by_code=by_code)
            detail = ", ".join(f"{n} x {c}" for c, n in by_code.items())
            found.append(
                _check(
                    "error_rate",
                    "health",
                    rate <= spec.health.max_error_rate,
                    rate,
                    f"<= {spec.health.max_error_rate:g}",
                    f"{errors} of {total} requests failed in this window"
                    + (f" ({detail})" if detail else ""),
                )
            )
        return found

    def _performance(
        self, spec: MonitorSpec, logged: pd.DataFrame
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        perf = spec.performance
        if perf is None:
            raise InvalidInputError(f"monitor {spec.name!r} has no performance section")
        ids = sorted(set(logged["request_id"].astype(str)))
        labels = self.feedback.labels(spec.deployment, ids)
        if not labels:
            return {"labels": 0, "message": "no labels for this window yet"}, []
        table = pd.DataFrame(
            {
                "request_id": [lb.request_id for lb in labels],
                "row": [lb.row for lb in labels],
                "label": [lb.label for lb in labels],
            }
        )
        joined = (
            logged.assign(request_id=logged["request_id"].astype(str))
            .merge(table, on=["request_id", "row"], how="inner")
            .reset_index(drop=True)
        )
        info: dict[str, Any] = {
            "labels": len(joined),
            "coverage": float(len(joined) / len(logged)),
        }
        if len(joined) < perf.min_labels:
            info["message"] = (
                f"{len(joined)} labelled rows, fewer than {perf.min_labels}: not judged"
            )
            return info, []
        y = joined["label"].astype(float).to_numpy()
        score = joined[SCORE].to_numpy(dtype=float) if SCORE in joined.columns else None
        pred = (
            (score >= perf.threshold).astype(int)
            if score is not None
            else joined["output.prediction"].to_numpy()
        )
        binary = set(np.unique(y)) <= {0.0, 1.0}
        truth = y.astype(int) if binary else y
        values: dict[str, float] = {}
        found = []
        for metric, bounds in perf.metrics.items():
            if metric == "calibration_error":
                if score is None:
                    continue
                value = calibration_error(y, score)
            else:
                try:
                    value = metric_value(metric, truth, score, pred)
                except InvalidInputError as exc:
                    info.setdefault("skipped", {})[metric] = exc.message
                    continue
            values[metric] = value
            ok = (bounds.min is None or value >= bounds.min) and (
                bounds.max is None or value <= bounds.max
            )
            limit = " and ".join(
                ([f">= {bounds.min:g}"] if bounds.min is not None else [])
                + ([f"<= {bounds.max:g}"] if bounds.max is not None else [])
            )
            found.append(
                _check(
                    f"performance:{metric}",
                    "performance",
                    ok,
                    value,
                    limit,
                    f"{metric} = {value:.4f} on {len(joined)} labelled rows",
                )
            )
        info["metrics"] = values
        if score is not None:
            info["calibration"] = calibration_table(y, score)
        column = INPUT + perf.sensitive if perf.sensitive else None
        if column and column in joined.columns:
            groups = []
            for group, part in joined.groupby(joined[column].astype(str), observed=True):
                yt, yp = (
                    part["label"].astype(int).to_numpy(),
                    pred[part.index.to_numpy()],
                )
                positives, negatives = yt == 1, yt == 0
                groups.append(
                    {
                        "group": str(group),
                        "rows": len(part),
                        "selection_rate": float(yp.mean()),
                        "recall": float(yp[positives].mean()) if positives.any() else None,
                        "false_positive_rate": float(yp[negatives].mean())
                        if negatives.any()
                        else None,
                    }
                )
            info["fairness"] = {"sensitive": perf.sensitive, "groups": groups}
        return info, found

    def _save(
        self, spec: MonitorSpec, start: datetime, end: datetime, result: dict[str, Any]
    ) -> dict[str, Any]:
        result = finite(result)  # an all-null column has no statistic: stored as null
        where = spec.reference.path or ""
        if spec.reference.kind == "file" and where.startswith(BLOB):
            result["reference_blob"] = where.removeprefix(BLOB)  # kept by the orphan sweep
        window = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        self.results.save(
            spec.name, *window, str(result["status"]), int(result["rows"]), result, now_ms()
        )
        if spec.alerts and self.alerts is not None:
            service = self._alert_service(spec)
            # A rule looks back at most its own number of windows with traffic.
            recent = self.results.history(
                spec.name, max(rule.windows for rule in spec.alerts), judged=True
            )
            changed = service.evaluate(spec.name, spec.alerts, recent)
            result["alerts"] = [
                {
                    "id": a.id,
                    "rule": a.rule,
                    "status": a.status,
                    "severity": a.severity,
                    "pipeline_run": a.pipeline_run,
                }
                for a in changed
            ]
            self.results.save(
                spec.name, *window, str(result["status"]), int(result["rows"]), result, now_ms()
            )
        return result

    def record(
        self, spec: MonitorSpec, start: datetime, end: datetime, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a result judged elsewhere (configuration drift, say) as a window of
        ``spec``, so its alert rules fire, notify and resolve as any monitor's do."""
        return self._save(spec, start, end, result)

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored results of a monitor (the newest ``limit``), oldest window first."""
        found = self.results.history(name, limit)
        if not found:
            raise NotFoundError(f"monitor {name!r} has no results yet; run shipyard monitor run")
        return found

    def latest(self) -> list[dict[str, Any]]:
        """The newest window's result of every monitor."""
        return self.results.latest()

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """Alerts, newest first (none where this store keeps no alerts)."""
        return self.alerts.list_alerts(monitor, status) if self.alerts is not None else []

    def _alert_service(self, spec: MonitorSpec | None = None) -> AlertService:
        if self.alerts is None:
            raise InvalidInputError("this store keeps no alerts")
        notifiers = self.notifiers(spec) if self.notifiers and spec is not None else {}
        return AlertService(self.alerts, notifiers, self.audit, self.retrain, self.lineage)

    def redeliver(self, alert_id: str, spec: MonitorSpec) -> Alert:
        """Send an alert's undelivered notifications again, through ``spec``'s notifiers."""
        return self._alert_service(spec).redeliver(alert_id)

    def link_retraining(self, alert_id: str, pipeline: str, pipeline_run: str) -> Alert:
        """Record the retraining run a client started for a firing alert."""
        return self._alert_service().link_retraining(alert_id, pipeline, pipeline_run)


def _health(logged: pd.DataFrame, start: datetime, end: datetime) -> dict[str, Any]:
    """Latency percentiles and throughput, overall and per model version."""
    seconds = max((end - start).total_seconds(), 1.0)
    per_request = logged.drop_duplicates("request_id")

    def stats(part: pd.DataFrame) -> dict[str, Any]:
        latency = part["latency_seconds"].to_numpy(dtype=float)
        return {
            "requests": len(part),
            "requests_per_second": len(part) / seconds,
            "latency_p50": float(np.percentile(latency, 50)),
            "latency_p95": float(np.percentile(latency, 95)),
            "latency_p99": float(np.percentile(latency, 99)),
            "latency_sum": float(latency.sum()),
        }

    return {
        **stats(per_request),
        "versions": {str(v): stats(p) for v, p in per_request.groupby("version")},
    }


def _quality(
    spec: MonitorSpec, ref: _Reference, current: pd.DataFrame, rows: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    q = spec.quality
    if q is None:
        raise InvalidInputError(f"monitor {spec.name!r} has no quality section")
    checks = []
    columns: dict[str, Any] = {}
    for name in current.columns:
        values = current[name]
        nulls = float(values.isna().mean())
        info: dict[str, Any] = {"null_rate": nulls}
        prepared = ref.prepared.columns.get(name)
        if (
            prepared is not None
            and prepared.sorted is not None
            and pd.api.types.is_numeric_dtype(values)
        ):
            present = values.dropna().to_numpy(dtype=float)
            lo, hi = prepared.sorted[0], prepared.sorted[-1]
            info["out_of_range"] = (
                float(((present < lo) | (present > hi)).mean()) if len(present) else 0.0
            )
            info["range"] = [float(lo), float(hi)]
        elif prepared is not None and prepared.sorted is None:
            texts = values.dropna().astype(str)
            known = set(map(str, prepared.counts.index))
            unseen = texts[~texts.isin(known)]
            info["unseen"] = float(len(unseen) / len(texts)) if len(texts) else 0.0
            info["unseen_examples"] = sorted(set(unseen))[:5]
        columns[name] = info
    worst_null = max(columns.items(), key=lambda kv: kv[1]["null_rate"])
    checks.append(
        _check(
            "null_rate",
            "quality",
            worst_null[1]["null_rate"] <= q.max_null_rate,
            worst_null[1]["null_rate"],
            f"<= {q.max_null_rate:g}",
            f"highest null rate: {worst_null[0]} {worst_null[1]['null_rate']:.2%}",
        )
    )
    ranged = {k: v["out_of_range"] for k, v in columns.items() if "out_of_range" in v}
    if ranged:
        col, share = max(ranged.items(), key=lambda kv: kv[1])
        checks.append(
            _check(
                "out_of_range",
                "quality",
                share <= q.max_out_of_range,
                share,
                f"<= {q.max_out_of_range:g}",
                f"most values outside the reference range: {col} {share:.2%}",
            )
        )
    cats = {k: v["unseen"] for k, v in columns.items() if "unseen" in v}
    if cats:
        col, share = max(cats.items(), key=lambda kv: kv[1])
        examples = ", ".join(columns[col]["unseen_examples"])
        checks.append(
            _check(
                "unseen_categories",
                "quality",
                share <= q.max_unseen,
                share,
                f"<= {q.max_unseen:g}",
                f"categories never seen in the reference: {col} {share:.2%}"
                + (f" ({examples})" if examples else ""),
            )
        )
    volume_ok = rows >= q.min_rows and (q.max_rows is None or rows <= q.max_rows)
    limit = f">= {q.min_rows}" + (f" and <= {q.max_rows}" if q.max_rows else "")
    checks.append(
        _check("volume", "quality", volume_ok, float(rows), limit, f"{rows} rows in the window")
    )
    return {"columns": columns, "psi_bands": list(PSI_BANDS)}, checks


def calibration_error(
    y: np.ndarray[Any, Any], score: np.ndarray[Any, Any], bins: int = 10
) -> float:
    """Expected calibration error: row-weighted |mean score - positive rate| over score bins."""
    table = calibration_table(y, score, bins)
    total = sum(b["rows"] for b in table)
    return float(sum(b["rows"] * abs(b["mean_score"] - b["positive_rate"]) for b in table) / total)


def calibration_table(
    y: np.ndarray[Any, Any], score: np.ndarray[Any, Any], bins: int = 10
) -> list[dict[str, Any]]:
    """Mean score and positive rate per equal-width score bin (for a reliability chart)."""
    index = np.minimum((score * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(
                {
                    "bin": b,
                    "rows": int(mask.sum()),
                    "mean_score": float(score[mask].mean()),
                    "positive_rate": float(y[mask].mean()),
                }
            )
    return out


def _histogram(ref: Any, values: pd.Series, bins: int = 20) -> dict[str, Any]:
    """Shares of reference and current values on shared bins (a chart per feature)."""
    present = values.dropna()
    if ref.sorted is not None and pd.api.types.is_numeric_dtype(present):
        lo, hi = float(ref.sorted[0]), float(ref.sorted[-1])
        data = present.to_numpy(dtype=float)
        lo, hi = min(lo, float(data.min(initial=lo))), max(hi, float(data.max(initial=hi)))
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        reference = np.histogram(ref.sorted, edges)[0] / max(ref.rows, 1)
        current = np.histogram(data, edges)[0] / max(len(data), 1)
        return {
            "kind": "numeric",
            "edges": edges.tolist(),
            "reference": reference.tolist(),
            "current": current.tolist(),
        }
    ref_share = ref.counts / max(ref.counts.sum(), 1)
    cur_share = present.astype(str).value_counts(normalize=True)
    keys = list(
        dict.fromkeys(
            [*map(str, ref_share.sort_values(ascending=False).index[:15]), *cur_share.index[:5]]
        )
    )
    ref_map = {str(k): float(v) for k, v in ref_share.items()}
    return {
        "kind": "categorical",
        "categories": keys,
        "reference": [ref_map.get(k, 0.0) for k in keys],
        "current": [float(cur_share.get(k, 0.0)) for k in keys],
    }
