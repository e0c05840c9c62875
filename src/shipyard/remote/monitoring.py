"""Feedback, monitors and alerts through a Shipyard server."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.core.blobs import BlobStore
from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.alerts import Alert
from shipyard.monitoring.feedback import parse_items
from shipyard.monitoring.models import FeedbackResult, Rejected
from shipyard.monitoring.ports import Retrainer
from shipyard.monitoring.spec import BLOB, MonitorSpec, ReferenceSpec
from shipyard.remote.client import RestClient, json_body, seg
from shipyard.wire.schemas import (
    AlertList,
    AlertRedeliver,
    AlertWire,
    MonitorResults,
    MonitorRunCreate,
    RetrainingLink,
)


class RestFeedback:
    """Feedback over HTTP: POST /api/v1/deployments/{name}/feedback; the server checks and
    stores."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def submit(self, deployment: str, items: Iterable[Mapping[str, Any]]) -> FeedbackResult:
        """Send the labels; the answer says what was stored and what was refused."""
        labels = [
            {"request_id": lb.request_id, "row": lb.row, "label": lb.label}
            for lb in parse_items(items)
        ]
        data = self.client.json(
            "POST",
            f"/api/v1/deployments/{seg(deployment)}/feedback",
            idempotent=False,
            content=json.dumps({"labels": labels}),
            headers={"Content-Type": "application/json"},
        )
        return FeedbackResult(
            data["deployment"], int(data["accepted"]), [Rejected(**r) for r in data["rejected"]]
        )


class RestMonitoring:
    """Monitoring over HTTP: the server evaluates each window where the prediction log is;
    a reference file is uploaded as a blob first, and retraining runs here, where the
    pipeline's code is, and is reported back to the alert."""

    def __init__(self, client: RestClient, blobs: BlobStore) -> None:
        self.client = client
        self.blobs = blobs
        self.retrain: Retrainer | None = None
        self._uploaded: dict[tuple[str, int, int], str] = {}

    def _declaration(self, spec: MonitorSpec) -> dict[str, Any]:
        ref = spec.reference
        if ref.kind == "file" and ref.path and not ref.path.startswith(BLOB):
            path = Path(ref.path)
            if not path.is_file():
                raise InvalidInputError(f"reference file {path} does not exist")
            stat = path.stat()
            key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
            if key not in self._uploaded:  # once per file, not once per window
                self._uploaded[key] = self.blobs.put_file(path).digest
            moved = ReferenceSpec(kind="file", path=BLOB + self._uploaded[key])
            spec = spec.model_copy(update={"reference": moved})
        return spec.model_dump(mode="json", by_alias=True)

    def _post_run(self, spec: MonitorSpec, body: MonitorRunCreate) -> dict[str, Any]:
        result: dict[str, Any] = self.client.json(
            "POST", f"/api/v1/monitors/{seg(spec.name)}/runs", idempotent=False, **json_body(body)
        )
        self._retrain(spec, result)
        return result

    def _retrain(self, spec: MonitorSpec, result: dict[str, Any]) -> None:
        """Start the retraining pipelines of alerts that fired in this window."""
        targets = {rule.name: rule.retrain for rule in spec.alerts if rule.retrain}
        fired = [
            entry
            for entry in result.get("alerts", [])
            if entry.get("status") == "firing" and targets.get(entry.get("rule", ""))
        ]
        if not fired or self.retrain is None:
            return
        alerts = {a.id: a for a in self.list_alerts(spec.name, "firing")}
        for entry in fired:
            alert = alerts.get(entry["id"])
            if alert is None or alert.pipeline_run is not None:
                continue
            target = targets[entry["rule"]]
            run_id = self.retrain(target, alert)
            link = RetrainingLink(pipeline=target, pipeline_run=run_id)
            self.client.json(
                "POST",
                f"/api/v1/alerts/{seg(alert.id)}/retraining",
                idempotent=False,
                **json_body(link),
            )
            entry["pipeline_run"] = run_id

    def run(self, spec: MonitorSpec, start: datetime, end: datetime) -> dict[str, Any]:
        """POST /api/v1/monitors/{name}/runs for one window."""
        body = MonitorRunCreate(spec=self._declaration(spec), start=start, end=end)
        return self._post_run(spec, body)

    def run_latest(self, spec: MonitorSpec, until: datetime) -> dict[str, Any]:
        """POST /api/v1/monitors/{name}/runs for the last ``window.rows`` predictions."""
        if spec.window.rows is None:
            raise InvalidInputError("run_latest needs a monitor with window.rows")
        return self._post_run(spec, MonitorRunCreate(spec=self._declaration(spec), until=until))

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """GET /api/v1/monitors/{name}/results."""
        params = {"limit": str(limit)} if limit is not None else {}
        data = self.client.json("GET", f"/api/v1/monitors/{seg(name)}/results", params=params)
        return MonitorResults.model_validate(data).results

    def latest(self) -> list[dict[str, Any]]:
        """GET /api/v1/monitors."""
        return MonitorResults.model_validate(self.client.json("GET", "/api/v1/monitors")).results

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """GET /api/v1/alerts."""
        params = {k: v for k, v in (("monitor", monitor), ("status", status)) if v is not None}
        data = self.client.json("GET", "/api/v1/alerts", params=params)
        return [a.domain() for a in AlertList.model_validate(data).alerts]

    def redeliver(self, alert_id: str, spec: MonitorSpec) -> Alert:
        """POST /api/v1/alerts/{id}/redeliver: the server sends, through its guard."""
        body = AlertRedeliver(spec=self._declaration(spec))
        data = self.client.json(
            "POST", f"/api/v1/alerts/{seg(alert_id)}/redeliver", idempotent=False, **json_body(body)
        )
        return AlertWire.model_validate(data).domain()
