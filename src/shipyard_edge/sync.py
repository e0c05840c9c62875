"""Talking to the platform when it is reachable: upload telemetry under a bandwidth cap,
report the running bundle and fetch the one this device is assigned.

Only the standard library's ``urllib``: a device carries no HTTP client of its own.
Uploads are gzip-compressed JSON batches; the cap is a budget of bytes per second over the
whole sync (the link is shared with the terminal's payments), and what does not fit stays
buffered for the next sync. Nothing is lost when the link drops mid-batch: records are
forgotten only once the platform acknowledges them.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard_edge.bundle import BundleError, sha256, verify_bytes
from shipyard_edge.telemetry import TelemetryBuffer

DEFAULT_BATCH_BYTES = 256 * 1024


class PlatformUnreachableError(OSError):
    """The platform did not answer (offline, or it refused the request)."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync sent, and what it left for later."""

    batches: int
    records: int
    bytes_sent: int
    seconds: float
    left: int
    reachable: bool
    error: str | None = None


@dataclass(frozen=True)
class Platform:
    """A Shipyard server as a device sees it: its URL, a token, and who this device is."""

    url: str
    device: str
    group: str
    token: str | None = None
    timeout: float = 10.0

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        if not self.url.startswith(("http://", "https://")):
            raise PlatformUnreachableError(f"the platform URL must be http(s): {self.url}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url.rstrip("/") + path, data=body, method=method, headers=headers or {}
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise PlatformUnreachableError(
                f"the platform refused {path}: {exc.code} {detail}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise PlatformUnreachableError(f"the platform is unreachable: {exc}") from None

    def upload(
        self,
        buffer: TelemetryBuffer,
        *,
        bytes_per_second: float,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_seconds: float | None = None,
    ) -> SyncResult:
        """Send buffered records in batches, never faster than ``bytes_per_second`` (bytes on
        the wire, compressed), stopping after ``max_seconds`` or when the buffer is empty."""
        started = time.monotonic()
        sent = records = batches = 0
        error: str | None = None
        reachable = True
        while True:
            rows, dropped = buffer.batch(batch_bytes)
            if not rows:
                break
            payload = (
                b'{"device":'
                + json.dumps(self.device).encode()
                + b',"group":'
                + json.dumps(self.group).encode()
                + b',"first_seq":'
                + str(rows[0][0]).encode()
                + b',"last_seq":'
                + str(rows[-1][0]).encode()
                + b',"dropped":'
                + str(dropped).encode()
                + b',"records":['
                + ",".join(body for _, body in rows).encode()
                + b"]}"
            )
            wire = gzip.compress(payload, compresslevel=6)
            # The cap: a batch leaves only when the whole sync stays under the rate.
            wait = (sent + len(wire)) / bytes_per_second - (time.monotonic() - started)
            if max_seconds is not None and time.monotonic() - started + max(wait, 0) > max_seconds:
                break
            if wait > 0:
                time.sleep(wait)
            try:
                self._request(
                    "POST",
                    "/api/v1/edge/telemetry",
                    wire,
                    {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                )
            except PlatformUnreachableError as exc:
                reachable, error = False, str(exc)
                break
            buffer.acknowledge(rows[-1][0], dropped)
            sent += len(wire)
            records += len(rows)
            batches += 1
        return SyncResult(
            batches,
            records,
            sent,
            time.monotonic() - started,
            buffer.pending().records,
            reachable,
            error,
        )

    def checkin(self, bundle_id: str | None) -> dict[str, Any]:
        """Report the bundle this device runs; the platform answers which one to run."""
        body = json.dumps({"group": self.group, "bundle": bundle_id}).encode()
        answer = self._request(
            "POST",
            f"/api/v1/edge/devices/{quote(self.device, safe='')}/checkin",
            body,
            {"Content-Type": "application/json"},
        )
        loaded: dict[str, Any] = json.loads(answer)
        return loaded

    def fetch(self, assignment: dict[str, Any], dest: str | Path, trusted: dict[str, Any]) -> Path:
        """Download the assigned bundle, verify it, and only then put it at ``dest``."""
        bundle_id = str(assignment["bundle"])
        data = self._request("GET", f"/api/v1/edge/bundles/{quote(bundle_id, safe='')}")
        if assignment.get("sha256") and sha256(data) != assignment["sha256"]:
            raise BundleError(f"bundle {bundle_id} does not match the hash the platform gave")
        verify_bytes(data, trusted)
        path = Path(dest)
        tmp = path.with_name(f".{path.name}.download")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path
