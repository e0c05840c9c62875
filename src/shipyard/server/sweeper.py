"""The platform server ends runs whose clients died (no heartbeat for ``run_timeout``)."""

from __future__ import annotations

import logging
import threading

from shipyard.core.actor import acting_as
from shipyard.core.errors import ShipyardError
from shipyard.tracking.service import TrackingService

logger = logging.getLogger(__name__)


class RunSweeper:
    """A daemon thread expiring stale RUNNING runs every ``every`` seconds."""

    def __init__(self, tracking: TrackingService, timeout: float, every: float = 60.0) -> None:
        self.tracking = tracking
        self.timeout = timeout
        self.every = min(every, max(1.0, timeout / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-run-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping (does nothing when the timeout is 0)."""
        if self.timeout > 0:
            self._thread.start()

    def sweep(self) -> list[str]:
        """One pass: the ids it ended."""
        with acting_as("shipyard-server"):
            return self.tracking.expire_stale_runs(self.timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                expired = self.sweep()
            except ShipyardError as exc:
                logger.warning("run sweep failed: %s", exc)
                continue
            if expired:
                logger.info("ended %d run(s) silent for %gs", len(expired), self.timeout)

    def stop(self) -> None:
        """Stop sweeping."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
