"""Alerts: rules over monitor windows, webhooks with SSRF guards and retries, retraining."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.monitoring.spec import parse_monitor
from shipyard.predlog.writer import ParquetPredictionLog
from shipyard.remote.notify import UnsafeDestinationError, WebhookNotifier, check_destination
from shipyard.sdk.monitoring import retrainer
from shipyard.serving.ports import PredictionRecord
from tests.integration.test_gates import FAIR, make_data

BASE = datetime(2026, 11, 21, tzinfo=UTC)
EVENT = {
    "event": "firing",
    "alert": "alrt_x",
    "monitor": "m",
    "rule": "r",
    "severity": "warning",
    "message": "drift",
    "window": "w",
}


class Receiver:
    """A webhook receiver on 127.0.0.1: answers by mode, records what it got."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.bodies: list[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                outer.bodies.append(json.loads(self.rfile.read(length) or b"null"))
                if outer.mode == "hang":
                    time.sleep(2)
                if outer.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.end_headers()
                    return
                self.send_response(500 if outer.mode == "fail" else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/x",
        "http://[::1]/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://172.16.5.5/x",
        "http://localhost/x",
        "http://0.0.0.0/x",
        "ftp://example.com/x",
        "http:///nohost",
    ],
)
def test_webhooks_refuse_private_loopback_and_link_local_addresses(url: str) -> None:
    with pytest.raises(UnsafeDestinationError):
        check_destination(url, allow=[])


def test_allowed_hosts_and_ranges_pass() -> None:
    check_destination("http://127.0.0.1:9/x", allow=["127.0.0.0/8"])
    check_destination("http://[::1]:9/x", allow=["::1"])
    check_destination("http://93.184.215.14/x", allow=[])  # a public address


def test_delivery_retries_times_out_and_checks_every_redirect(receiver: Receiver) -> None:
    hook = WebhookNotifier(receiver.url, retries=2, timeout=0.5, backoff=0.01, allow=["127.0.0.1"])
    done = hook.send(EVENT)
    assert done["delivered"] and done["attempts"] == 1 and receiver.bodies[-1] == EVENT
    slack = WebhookNotifier(receiver.url, slack=True, allow=["127.0.0.1"]).send(EVENT)
    assert slack["delivered"] and receiver.bodies[-1] == {"text": "[warning] firing: drift"}
    receiver.mode, receiver.bodies = "fail", []
    failed = hook.send(EVENT)
    assert not failed["delivered"] and failed["attempts"] == 3 and len(receiver.bodies) == 3
    assert failed["error"] == "HTTP 500"
    receiver.mode = "hang"
    started = time.monotonic()
    hung = hook.send(EVENT)
    assert not hung["delivered"] and "Timeout" in hung["error"]
    assert time.monotonic() - started < 5
    receiver.mode = "redirect"
    moved = hook.send(EVENT)
    assert not moved["delivered"] and "169.254.169.254" in moved["error"]
    assert (
        WebhookNotifier("http://127.0.0.1:9/x")
        .send(EVENT)["error"]
        .startswith("connection to 127.0.0.1")
    )


def log_hours(
    predlog: Path, model: LogisticRegression, base: datetime, shifts: list[float], seed: int
) -> list[dict[str, Any]]:
    """One request of 400 rows per hour from ``base`` to credit-live, each hour's inputs
    shifted by ``shifts[hour]``; returns every row's label, as feedback would send it."""
    log = ParquetPredictionLog(predlog)
    labels = []
    for hour, shift in enumerate(shifts):
        data = make_data(400, seed + hour, shift=shift)
        proba = model.predict_proba(data[FAIR])[:, 1]
        request = f"h{hour}"
        log.submit(
            PredictionRecord(
                "credit-live",
                "credit",
                "1",
                "primary",
                request,
                int((base + timedelta(hours=hour)).timestamp() * 1000),
                0.003,
                {c: data[c].to_numpy() for c in FAIR},
                {"prediction": (proba >= 0.5).astype(int), "proba_1": proba},
                len(data),
            )
        )
        labels += [
            {"request_id": request, "row": r, "label": int(v)} for r, v in enumerate(data["label"])
        ]
    log.close()
    return labels


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """credit v1 and five hours of traffic: calm, calm, shifted, shifted, calm."""
    home = tmp_path / "store"
    monkeypatch.setenv("SHIPYARD_PREDLOG", str(home / "predictions"))
    monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.1")
    shipyard.set_uri(str(home))
    train = make_data(3000, 1)
    model = LogisticRegression().fit(train[FAIR], train["label"])
    shipyard.register_model("credit", model, train[FAIR][:5], training_data=train[FAIR])
    log_hours(home / "predictions", model, BASE, [0.0, 0.0, 2.0, 2.0, 0.0], seed=20)
    yield home
    shipyard.set_uri(None)


def test_an_alert_fires_once_retrains_and_resolves(store: Path, receiver: Receiver) -> None:
    backend = shipyard.sdk.context.current().get_backend()
    monitors = backend.monitors
    monitors.retrain = retrainer()
    spec = parse_monitor(
        {
            "name": "credit-watch",
            "deployment": "credit-live",
            "model": "models:/credit/1",
            "features": FAIR,
            "quality": None,
            "alerts": [
                {
                    "name": "drift",
                    "check": "drift",
                    "for": 2,
                    "severity": "critical",
                    "notify": ["hook", "log"],
                    "retrain": "tests.resources.pipelines.training:training",
                }
            ],
            "notifiers": {
                "hook": {"type": "webhook", "url": receiver.url, "retries": 1},
                "log": {"type": "log"},
            },
        }
    )
    hour = timedelta(hours=1)
    fired = [
        monitors.run(spec, BASE + i * hour, BASE + (i + 1) * hour).get("alerts", [])
        for i in range(5)
    ]
    # Two drifting windows in a row fire it once (hour 3); hour 4 is calm and resolves it.
    assert [len(f) for f in fired] == [0, 0, 0, 1, 1]
    assert fired[3][0]["status"] == "firing" and fired[4][0]["status"] == "resolved"
    run_id = fired[3][0]["pipeline_run"]
    assert run_id and run_id.startswith("prun_")
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[0]["severity"] == "critical"
    again = monitors.run(spec, BASE + 3 * hour, BASE + 4 * hour)  # re-run: no second alert
    assert again.get("alerts") == [] and again["status"] == "alert"
    alerts = monitors.alerts.list_alerts("credit-watch")
    assert len(alerts) == 1 and alerts[0].status == "resolved"
    assert all(d["delivered"] for d in alerts[0].deliveries)
    actions = [e.action for e in backend.governance.audit.events(obj="monitor:credit-watch")]
    assert actions == ["alert.retraining_started", "alert.fired", "alert.resolved"]
    edges = backend.pipelines.store.edges_touching([f"alert:{alerts[0].id}"])
    assert (f"alert:{alerts[0].id}", f"pipeline_run:{run_id}", "triggered") in edges


def test_an_undelivered_alert_is_kept_and_can_be_sent_again(
    store: Path, receiver: Receiver
) -> None:
    monitors = shipyard.sdk.context.current().get_backend().monitors
    spec = parse_monitor(
        {
            "name": "w2",
            "deployment": "credit-live",
            "model": "models:/credit/1",
            "features": FAIR,
            "alerts": [{"name": "drift", "check": "drift", "notify": ["hook"]}],
            "notifiers": {"hook": {"type": "webhook", "url": receiver.url, "retries": 1}},
        }
    )
    receiver.mode = "fail"
    result = monitors.run(spec, BASE + timedelta(hours=2), BASE + timedelta(hours=3))
    assert result["alerts"][0]["status"] == "firing"
    alert = monitors.alerts.list_alerts("w2")[0]
    assert alert.deliveries[0]["delivered"] is False and alert.deliveries[0]["attempts"] == 2
    receiver.mode = "ok"
    from shipyard.bootstrap import build_notifiers
    from shipyard.monitoring.alerts import AlertService

    settings = shipyard.sdk.context.current().settings
    sent = AlertService(monitors.alerts, build_notifiers(spec, settings)).redeliver(alert.id)
    assert sent.deliveries[0]["delivered"] is True
