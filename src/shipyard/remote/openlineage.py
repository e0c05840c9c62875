"""Where OpenLineage events go: an HTTP endpoint (Marquez, DataHub, ...) or a JSON-lines file.

Sending never fails a pipeline: errors are logged and counted. The HTTP transport follows
the OpenLineage client's defaults (``POST {url}/api/v1/lineage``, 5 s timeout, bearer API
key from ``OPENLINEAGE_API_KEY``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import httpx

from shipyard.core.settings import Settings
from shipyard.pipelines.ports import LineageSink

logger = logging.getLogger(__name__)


class FileLineageSink:
    """Append one JSON event per line (air-gapped installations ship the file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self.failures = 0

    def emit(self, event: dict[str, Any]) -> None:
        """Append the event."""
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
        except OSError as exc:
            self.failures += 1
            logger.warning("OpenLineage: cannot write %s: %s", self.path, exc)


class HttpLineageSink:
    """POST each event to an OpenLineage endpoint."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        endpoint: str = "api/v1/lineage",
        timeout: float = 5.0,
    ) -> None:
        self.url = f"{url.rstrip('/')}/{endpoint.lstrip('/')}"
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(headers=headers, timeout=timeout, follow_redirects=False)
        self.failures = 0

    def emit(self, event: dict[str, Any]) -> None:
        """Send the event; a failure is logged, not raised."""
        try:
            response = self.http.post(self.url, content=json.dumps(event))
            if response.status_code >= 300:
                raise httpx.HTTPStatusError(
                    f"{response.status_code}", request=response.request, response=response
                )
        except httpx.HTTPError as exc:
            self.failures += 1
            logger.warning("OpenLineage: cannot send to %s: %s", self.url, exc)


class FanOut:
    """Several sinks as one."""

    def __init__(self, sinks: list[LineageSink]) -> None:
        self.sinks = sinks

    def emit(self, event: dict[str, Any]) -> None:
        """Give the event to every sink."""
        for sink in self.sinks:
            sink.emit(event)


def lineage_sink(settings: Settings) -> LineageSink | None:
    """The configured sinks: Shipyard's settings, else the standard OPENLINEAGE_URL."""
    sinks: list[LineageSink] = []
    url = settings.openlineage_url or os.environ.get("OPENLINEAGE_URL")
    if url:
        sinks.append(
            HttpLineageSink(
                url,
                os.environ.get("OPENLINEAGE_API_KEY"),
                os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
            )
        )
    if settings.openlineage_file:
        sinks.append(FileLineageSink(settings.openlineage_file))
    if not sinks:
        return None
    return sinks[0] if len(sinks) == 1 else FanOut(sinks)
