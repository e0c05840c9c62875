"""Notifiers for alerts: webhooks (JSON or Slack-compatible), the log, and email over SMTP.

Webhooks never reach this machine's or the cloud's private side unless allowed: every
address a host name resolves to, and every redirect hop, must be a public address, or be
listed in ``SHIPYARD_WEBHOOK_ALLOW`` (host names, IPs or CIDR ranges). Calls time out and
are retried with backoff on timeouts, connection errors, 429 and 5xx.
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

logger = logging.getLogger(__name__)
MAX_REDIRECTS = 5


class UnsafeDestinationError(Exception):
    """The URL points somewhere a webhook must not go."""


_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo, compatible).

    Each one is where a packet may really go, so each must pass the same check.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64_LOCAL:
        return False  # local-use NAT64: translated to whatever the operator routes
    return all(_is_public(v4) for v4 in embedded_ipv4(ip))


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port``, an IP or a CIDR; the port is optional."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def _allowed(host: str, port: int, addresses: list[str], allow: list[str]) -> bool:
    for raw in allow:
        entry, entry_port = _split_entry(raw.strip())
        if not entry or (entry_port is not None and entry_port != port):
            continue
        if entry.lower() == host.lower():
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addresses and all(ipaddress.ip_address(a) in network for a in addresses):
            return True
    return False


_DEFAULT_PORTS = {"http": 80, "https": 443, "smtp": 25}


def check_destination(
    url: str, allow: list[str], schemes: tuple[str, ...] = ("http", "https")
) -> str:
    """Refuse other schemes and hosts that resolve to loopback, link-local, private,
    reserved or multicast addresses, IPv6 forms that carry one (unless allowed, with the
    port where the entry names one); return the checked address to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise UnsafeDestinationError(
            f"outbound URL must be {' or '.join(schemes)} with a host: {url!r}"
        )
    host = parts.hostname
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise UnsafeDestinationError(f"outbound URL has an invalid port: {url!r}") from None
    try:
        literal = ipaddress.ip_address(host)
        addresses = [str(literal)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise UnsafeDestinationError(f"cannot resolve {host}: {exc}") from None
        addresses = sorted({str(info[4][0]).split("%")[0] for info in infos})
    if not addresses:
        raise UnsafeDestinationError(f"{host} resolves to no address")
    if _allowed(host, port, addresses, allow):
        return addresses[0]
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not _is_public(ip):
            raise UnsafeDestinationError(
                f"connection to {host} ({ip}) refused: not a public address; allow it in "
                f"SHIPYARD_WEBHOOK_ALLOW (as {host}:{port}) if it is meant"
            )
    return addresses[0]


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, with the Host header and TLS name kept.

    Connecting to the address that was checked closes the DNS-rebinding window: the name
    is not resolved a second time between the check and the connection.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    return pinned, {"Host": host_header}, {"sni_hostname": host}


class WebhookNotifier:
    """POST the alert as JSON (or Slack's ``{"text": ...}``)."""

    def __init__(
        self,
        url: str,
        *,
        slack: bool = False,
        timeout: float = 5.0,
        retries: int = 3,
        allow: list[str] | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.url = url
        self.slack = slack
        self.timeout = timeout
        self.retries = retries
        self.allow = allow or []
        self.backoff = backoff

    def _post_once(self, client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            address = check_destination(url, self.allow)
            target, headers, extensions = pinned_request(url, address)
            response = client.post(target, json=body, headers=headers, extensions=extensions)
            if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            return response
        raise UnsafeDestinationError(f"more than {MAX_REDIRECTS} redirects from {self.url}")

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver with retries; the record says how it went (never raises)."""
        body = (
            {"text": f"[{event['severity']}] {event['event']}: {event['message']}"}
            if self.slack
            else event
        )
        error = ""
        attempts = 0
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(self.retries + 1):
                attempts = attempt + 1
                try:
                    response = self._post_once(client, body)
                except UnsafeDestinationError as exc:
                    return {"delivered": False, "attempts": attempts, "error": str(exc)}
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code < 300:
                        return {
                            "delivered": True,
                            "attempts": attempts,
                            "status": response.status_code,
                        }
                    error = f"HTTP {response.status_code}"
                    if response.status_code < 500 and response.status_code != 429:
                        break
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
        logger.warning(
            "alert webhook %s undelivered after %d attempts: %s", self.url, attempts, error
        )
        return {"delivered": False, "attempts": attempts, "error": error}


class LogNotifier:
    """Write the alert to the log (always delivered)."""

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """Log it."""
        level = logging.ERROR if event.get("severity") == "critical" else logging.WARNING
        logger.log(level, "alert %s %s: %s", event["alert"], event["event"], event["message"])
        return {"delivered": True, "attempts": 1}


class _PinnedSMTP(smtplib.SMTP):
    """SMTP to the address that was checked, under the relay's name (for TLS and EHLO)."""

    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        self.address = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self.address, port), timeout)


class EmailNotifier:
    """Send the alert by SMTP (STARTTLS, certificate verified, when the server offers it).

    The relay is checked like a webhook target: a private or loopback relay (the usual
    case inside a bank) must be listed in the allow list, so a monitor spec cannot point
    the platform at an internal service.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        to: list[str],
        timeout: float = 10.0,
        allow: list[str] | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.to, self.timeout = host, port, sender, to, timeout
        self.allow = allow or []

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """One message to every recipient."""
        message = EmailMessage()
        message["Subject"] = f"[shipyard {event['severity']}] {event['monitor']} {event['event']}"
        message["From"], message["To"] = self.sender, ", ".join(self.to)
        message.set_content(event["message"])
        literal = f"[{self.host}]" if ":" in self.host else self.host
        try:
            address = check_destination(f"smtp://{literal}:{self.port}", self.allow, ("smtp",))
        except UnsafeDestinationError as exc:
            return {"delivered": False, "attempts": 0, "error": str(exc)}
        try:
            with _PinnedSMTP(address, self.host, self.port, timeout=self.timeout) as smtp:
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            return {"delivered": False, "attempts": 1, "error": f"{type(exc).__name__}: {exc}"}
        return {"delivered": True, "attempts": 1}
