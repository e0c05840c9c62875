"""The webhook guard against IPv6 transition forms, port-blind allow-lists and DNS rebinding."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.remote.notify import UnsafeDestinationError, WebhookNotifier, check_destination
from tests.integration.test_alerts import EVENT, Receiver


@pytest.mark.parametrize(
    "host",
    [
        "[64:ff9b::169.254.169.254]",  # NAT64 of the metadata service
        "[64:ff9b::a9fe:a9fe]",
        "[64:ff9b:1::a9fe:a9fe]",  # local-use NAT64
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:169.254.169.254]",
        "[::127.0.0.1]",  # IPv4-compatible
        "[2002:a9fe:a9fe::1]",  # 6to4 around 169.254.169.254
        "[2002:7f00:1::1]",  # 6to4 around 127.0.0.1
        "[2001:0:4136:e378:8000:63bf:56ff:fffe]",  # Teredo, client 169.0.0.1 -> private side
        "[fe80::1]",
        "[fd00::1]",
    ],
)
def test_ipv6_forms_that_carry_a_private_ipv4_are_refused(host: str) -> None:
    with pytest.raises(UnsafeDestinationError):
        check_destination(f"http://{host}/x", allow=[])


def test_allow_list_entries_with_a_port_allow_that_port_only() -> None:
    check_destination("http://127.0.0.1:9000/x", allow=["127.0.0.1:9000"])
    check_destination("http://[::1]:9000/x", allow=["[::1]:9000"])
    check_destination("http://127.0.0.1:22/x", allow=["127.0.0.0/8"])  # a range: any port
    for url in ("http://127.0.0.1:22/x", "http://127.0.0.1/x", "http://[::1]:22/x"):
        with pytest.raises(UnsafeDestinationError):
            check_destination(url, allow=["127.0.0.1:9000", "[::1]:9000"])
    check_destination("http://localhost:9000/x", allow=["localhost:9000"])
    with pytest.raises(UnsafeDestinationError):
        check_destination("http://localhost:6379/x", allow=["localhost:9000"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def test_delivery_connects_to_the_address_that_was_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that answers 127.0.0.1 to the check and 127.0.0.2 later is not asked twice."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 10)
    asked: list[str] = []

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.example.test":
            return real(host, *args, **kwargs)
        address = next(answers)
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    hook = WebhookNotifier(
        f"http://hooks.example.test:{port}/hook", retries=0, allow=["127.0.0.1/32"]
    )
    done = hook.send(EVENT)
    assert done["delivered"], done
    assert asked == ["127.0.0.1"]
    assert receiver.bodies == [EVENT]
