"""SSRF on every outbound connection a monitor spec can name: webhooks (plain and Slack)
and email relays. Every internal address form is refused before a connection is made; an
allow-list entry lets exactly that destination through.

The other outbound connections are the operator's, not a spec author's: the OpenLineage
sink (``SHIPYARD_OPENLINEAGE_URL``) and ``shipyard import mlflow --from`` (run by the user,
on their machine, against a server they name).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shipyard.bootstrap import build_notifiers
from shipyard.core.settings import Settings
from shipyard.monitoring.spec import parse_monitor
from tests.conftest import free_port
from tests.integration.test_alerts import EVENT


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


class Inbox:
    """aiosmtpd's handler: keeps what a real SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def internal_hosts(port: int) -> list[str]:
    """127.0.0.1 (where the listener is) written every way a resolver accepts, and the
    other internal ranges."""
    return [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"127.1:{port}",
        f"2130706433:{port}",  # decimal
        f"0x7f000001:{port}",  # hex
        f"0177.0.0.1:{port}",  # octal
        f"[::1]:{port}",
        f"[::ffff:127.0.0.1]:{port}",
        f"[::ffff:7f00:1]:{port}",
        f"0.0.0.0:{port}",
        "169.254.169.254",  # cloud metadata
        "[fd00:ec2::254]",
        "10.0.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "[64:ff9b::a9fe:a9fe]",
    ]


def _notifier(kind: str, host: str, allow: str = "") -> Any:
    if kind == "email":
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name or not port.isdigit():
            name, port = host, "25"
        item = {
            "type": "email",
            "host": name.strip("[]"),
            "port": int(port),
            "sender": "shipyard@bank.test",
            "to": ["risk@bank.test"],
            "timeout": 2,
        }
    else:
        item = {"type": "webhook", "url": f"http://{host}/hook", "retries": 0, "timeout": 2}
        if kind == "slack":
            item["format"] = "slack"
    spec = parse_monitor(
        {"name": "m", "deployment": "d", "model": "models:/m/1", "notifiers": {"ops": item}}
    )
    return build_notifiers(spec, Settings(webhook_allow=allow))["ops"]


@pytest.mark.parametrize("kind", ["webhook", "slack", "email"])
def test_every_internal_address_form_is_refused_before_connecting(
    kind: str, listener: Listener
) -> None:
    for host in internal_hosts(listener.port):
        done = _notifier(kind, host).send(EVENT)
        assert not done["delivered"], (kind, host, done)
        assert "refused" in done["error"] or "cannot resolve" in done["error"], (host, done)
    assert listener.connections == 0, "a connection reached 127.0.0.1"


def test_an_allowed_relay_gets_the_mail_and_nothing_else_does(
    smtp: tuple[Controller, Inbox],
) -> None:
    controller, inbox = smtp
    port = controller.port
    allowed = _notifier("email", f"127.0.0.1:{port}", allow=f"127.0.0.1:{port}")
    done = allowed.send(EVENT)
    assert done["delivered"], done
    assert len(inbox.messages) == 1
    assert inbox.messages[0].rcpt_tos == ["risk@bank.test"]
    # Another port, or another loopback address, stays refused (another spelling of the
    # allowed address, such as 2130706433, is the same destination and goes through).
    for host in (f"127.0.0.1:{port + 1}", f"[::1]:{port}", f"127.0.0.2:{port}"):
        refused = _notifier("email", host, allow=f"127.0.0.1:{port}").send(EVENT)
        assert not refused["delivered"], (host, refused)
    assert len(inbox.messages) == 1
