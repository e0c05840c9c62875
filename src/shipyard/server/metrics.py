"""Monitor results as Prometheus gauges on the platform server's ``/metrics``.

Names follow Prometheus conventions (shared/CONVENTIONS.md): ``shipyard_feature_drift_score``
and ``shipyard_feature_drift_detected`` per model, feature and method, the PSI of each
feature and of the score, data-quality values, performance metrics once labels arrive,
latency and throughput, each monitor's status and its firing alerts. Values are the newest
window of every monitor, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["metrics"])
STATUS = {"ok": 0, "alert": 1, "no_data": 2}


def _families(results: list[dict[str, Any]], firing: list[Any]) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily, Metric

    def gauge(name: str, doc: str, labels: list[str]) -> Any:
        return GaugeMetricFamily(name, doc, labels=labels)

    score = gauge(
        "shipyard_feature_drift_score",
        "Drift statistic per feature (newest window).",
        ["monitor", "model", "feature", "method"],
    )
    detected = gauge(
        "shipyard_feature_drift_detected",
        "1 when the feature drifted.",
        ["monitor", "model", "feature", "method"],
    )
    psi = gauge(
        "shipyard_feature_psi",
        "Population stability index per feature.",
        ["monitor", "model", "feature"],
    )
    prediction = gauge(
        "shipyard_prediction_drift_score",
        "Drift of the prediction score.",
        ["monitor", "model", "method"],
    )
    quality = gauge(
        "shipyard_data_quality_ratio",
        "Data-quality measures (share of rows).",
        ["monitor", "model", "check"],
    )
    performance = gauge(
        "shipyard_model_performance",
        "Metrics on labelled predictions.",
        ["monitor", "model", "metric"],
    )
    # A summary (quantile samples with _count and _sum), the type Prometheus gives the
    # quantile label to; a gauge carrying it is refused by promtool.
    latency = Metric(
        "shipyard_monitor_latency_seconds", "Request latency in the newest window.", "summary"
    )
    status = gauge("shipyard_monitor_status", "0 ok, 1 alert, 2 no data.", ["monitor", "model"])
    rows = gauge(
        "shipyard_monitor_window_rows", "Predicted rows in the newest window.", ["monitor", "model"]
    )
    alerts = gauge("shipyard_alerts_firing", "Alerts firing now.", ["monitor", "severity"])
    for r in results:
        key = [r["monitor"], r["deployment"]]
        status.add_metric(key, STATUS.get(r.get("status", ""), 2))
        rows.add_metric(key, r.get("rows", 0))
        for column in (r.get("drift") or {}).get("columns", []):
            labels = [*key, column["column"], column["method"]]
            if column["statistic"] is not None:  # none for a column with no values
                score.add_metric(labels, column["statistic"])
            detected.add_metric(labels, 1.0 if column["drifted"] else 0.0)
            if column.get("psi") is not None:
                psi.add_metric([*key, column["column"]], column["psi"])
        drift_score = (r.get("drift") or {}).get("score")
        if drift_score and drift_score.get("statistic") is not None:
            prediction.add_metric([*key, drift_score["method"]], drift_score["statistic"])
        for check in r.get("checks", []):
            if (
                check["kind"] == "quality"
                and check["value"] is not None
                and check["name"] != "volume"
            ):
                quality.add_metric([*key, check["name"]], check["value"])
        for metric, value in ((r.get("performance") or {}).get("metrics") or {}).items():
            performance.add_metric([*key, metric], value)
        health = r.get("health") or {}
        where = {"monitor": key[0], "model": key[1]}
        for q, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            if f"latency_{q}" in health:
                latency.add_sample(
                    latency.name, {**where, "quantile": quantile}, health[f"latency_{q}"]
                )
        if "latency_p50" in health:
            latency.add_sample(f"{latency.name}_count", where, float(health.get("requests", 0)))
            if "latency_sum" in health:  # windows computed before it was kept have none
                latency.add_sample(f"{latency.name}_sum", where, health["latency_sum"])
    counts: dict[tuple[str, str], int] = {}
    for alert in firing:
        counts[(alert.monitor, alert.severity)] = counts.get((alert.monitor, alert.severity), 0) + 1
    for (monitor, severity), count in counts.items():
        alerts.add_metric([monitor, severity], count)
    yield from (
        score,
        detected,
        psi,
        prediction,
        quality,
        performance,
        latency,
        status,
        rows,
        alerts,
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus exposition of the newest monitor results and firing alerts."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    monitors = request.app.state.backend.monitors
    results = monitors.latest()
    firing = monitors.list_alerts(status="firing")

    class Collector:
        def collect(self) -> Iterator[Any]:
            yield from _families(results, firing)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
