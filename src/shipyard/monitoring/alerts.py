"""Alert rules over monitor results: fire after N failing windows, deduplicate, resolve.

A rule watches one check (``feature_drift``, ``performance:roc_auc``, ...) or a kind
(``drift``, ``quality``, ``performance``) or ``any``. It fires when that check failed in
each of the last ``for`` windows with traffic (``no_data`` windows neither count nor break
the streak), stays one open alert while the condition holds, and resolves when a window
passes. Firing and resolving are notified; an undelivered notification is kept with the
alert and can be sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shipyard.core.audit import NULL_AUDIT, AuditLog
from shipyard.core.clock import now_ms
from shipyard.core.errors import ConflictError, NotFoundError
from shipyard.core.ids import new_id


class AlertRule(BaseModel):
    """When to raise an alert, how loud, whom to tell, and what to start."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
    check: str = "any"  # a check name, a kind (drift, quality, performance) or "any"
    windows: int = Field(default=1, ge=1, le=1000, alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    notify: list[str] = Field(default_factory=list)
    retrain: str | None = None  # "module:pipeline" to run when the alert fires


@dataclass
class Alert:
    """One alert: open while its condition holds."""

    id: str
    monitor: str
    rule: str
    severity: str
    status: str  # "firing" or "resolved"
    opened_at: int
    first_window: str
    last_window: str
    message: str
    resolved_at: int | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    pipeline_run: str | None = None


class AlertStore(Protocol):
    """Alerts, kept (never deleted) with their delivery record."""

    def open_alert(self, monitor: str, rule: str) -> Alert | None:
        """The firing alert of a rule, if any."""
        ...

    def save(self, alert: Alert) -> None:
        """Insert or update an alert."""
        ...

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """Alerts, newest first."""
        ...


class LineageEdges(Protocol):
    """Where an alert's lineage goes: monitor -> alert -> the retraining run it started."""

    def add_edges(self, edges: list[tuple[str, str, str]]) -> None:
        """Record (source, target, relation) edges."""
        ...


class Notifier(Protocol):
    """Sends one alert event somewhere; returns a delivery record (never raises)."""

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver; the record says delivered or not, attempts and the last error."""
        ...


def _matches(check: dict[str, Any], rule: AlertRule) -> bool:
    return rule.check in ("any", check["name"], check["kind"])


def _failing(result: dict[str, Any], rule: AlertRule) -> list[dict[str, Any]]:
    return [c for c in result.get("checks", []) if c["status"] == "failed" and _matches(c, rule)]


class AlertService:
    """Evaluate rules after each window and deliver what changed."""

    def __init__(
        self,
        store: AlertStore,
        notifiers: dict[str, Notifier],
        audit: AuditLog | None = None,
        retrain: Callable[[str, Alert], str] | None = None,
        lineage: LineageEdges | None = None,
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.audit: AuditLog = audit or NULL_AUDIT
        self.retrain = retrain
        self.lineage = lineage

    def evaluate(
        self, monitor: str, rules: list[AlertRule], history: list[dict[str, Any]]
    ) -> list[Alert]:
        """Fire, keep or resolve each rule's alert from the monitor's results (oldest first)."""
        judged = [r for r in history if r.get("status") != "no_data"]
        changed: list[Alert] = []
        for rule in rules:
            recent = judged[-rule.windows :]
            failing = len(recent) == rule.windows and all(_failing(r, rule) for r in recent)
            current = self.store.open_alert(monitor, rule.name)
            if failing and current is None:
                last = recent[-1]
                reasons = "; ".join(c["message"] for c in _failing(last, rule))
                alert = Alert(
                    id=new_id("alrt"),
                    monitor=monitor,
                    rule=rule.name,
                    severity=rule.severity,
                    status="firing",
                    opened_at=now_ms(),
                    first_window=recent[0]["window_start"],
                    last_window=last["window_start"],
                    message=f"{monitor}/{rule.name}: failing {rule.windows} window(s): {reasons}",
                )
                self._deliver(alert, rule, "firing")
                if rule.retrain and self.retrain is not None:
                    alert.pipeline_run = self.retrain(rule.retrain, alert)
                with self.audit.atomic():  # not around delivery or retraining: no I/O held
                    if alert.pipeline_run is not None and rule.retrain:
                        self._retraining_started(alert, rule.retrain)
                    self.store.save(alert)
                    self.audit.record(
                        "alert.fired",
                        f"monitor:{monitor}",
                        {"alert": alert.id, "rule": rule.name, "severity": rule.severity},
                    )
                changed.append(alert)
            elif failing and current is not None:
                current.last_window = recent[-1]["window_start"]  # deduplicated: same alert
                self.store.save(current)
            elif not failing and current is not None and judged:
                current.status, current.resolved_at = "resolved", now_ms()
                self._deliver(current, rule, "resolved")
                with self.audit.atomic():
                    self.store.save(current)
                    self.audit.record("alert.resolved", f"monitor:{monitor}", {"alert": current.id})
                changed.append(current)
        return changed

    def _retraining_started(self, alert: Alert, pipeline: str) -> None:
        if self.lineage is not None:
            self.lineage.add_edges(
                [
                    (f"alert:{alert.id}", f"pipeline_run:{alert.pipeline_run}", "triggered"),
                    (f"monitor:{alert.monitor}", f"alert:{alert.id}", "raised"),
                ]
            )
        self.audit.record(
            "alert.retraining_started",
            f"monitor:{alert.monitor}",
            {"alert": alert.id, "pipeline": pipeline, "pipeline_run": alert.pipeline_run},
        )

    def link_retraining(self, alert_id: str, pipeline: str, pipeline_run: str) -> Alert:
        """Record the retraining run a client started for a firing alert (through a server,
        pipelines run where their code is, so the client starts it and reports it here)."""
        alert = self.get(alert_id)
        if alert.status != "firing":
            raise ConflictError(f"alert {alert_id} is {alert.status}: nothing to retrain for")
        if alert.pipeline_run is not None and alert.pipeline_run != pipeline_run:
            raise ConflictError(
                f"alert {alert_id} already started retraining run {alert.pipeline_run}"
            )
        alert.pipeline_run = pipeline_run
        with self.audit.atomic():
            self._retraining_started(alert, pipeline)
            self.store.save(alert)
        return alert

    def get(self, alert_id: str) -> Alert:
        """One alert; NotFoundError when there is none of that id."""
        alert = next((a for a in self.store.list_alerts() if a.id == alert_id), None)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        return alert

    def _deliver(self, alert: Alert, rule: AlertRule, event: str) -> None:
        body = {
            "event": event,
            "alert": alert.id,
            "monitor": alert.monitor,
            "rule": alert.rule,
            "severity": alert.severity,
            "message": alert.message,
            "window": alert.last_window,
        }
        for name in rule.notify:
            notifier = self.notifiers.get(name)
            if notifier is None:
                alert.deliveries.append(
                    {
                        "notifier": name,
                        "event": event,
                        "delivered": False,
                        "error": "no notifier of that name",
                    }
                )
                continue
            alert.deliveries.append({"notifier": name, "event": event, **notifier.send(body)})

    def redeliver(self, alert_id: str) -> Alert:
        """Send the undelivered notifications of an alert again."""
        alert = self.get(alert_id)
        for record in alert.deliveries:
            if not record.get("delivered") and record["notifier"] in self.notifiers:
                body = {
                    "event": record["event"],
                    "alert": alert.id,
                    "monitor": alert.monitor,
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "message": alert.message,
                }
                record.update(self.notifiers[record["notifier"]].send(body))
        self.store.save(alert)
        return alert
