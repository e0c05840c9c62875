"""The scheduler inside the server process (``shipyard server --scheduler``).

Ticks are claimed in the database, so this thread may run beside standalone
``shipyard scheduler`` processes or in every worker: each tick still runs once. The due
pipelines run in this process, as ``shipyard-scheduler``, and only those whose target
``SHIPYARD_SCHEDULE_TARGETS`` allows (default: Shipyard's own, such as the monitor and drift
watches): anyone who may add a schedule could otherwise run code of their choosing here.
"""

from __future__ import annotations

import logging
import threading

from shipyard.core.actor import acting_as
from shipyard.core.errors import ShipyardError
from shipyard.core.settings import Settings

logger = logging.getLogger(__name__)


class SchedulerThread:
    """A daemon thread that runs a scheduler pass every ``settings.scheduler_interval`` s."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval = settings.scheduler_interval
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-scheduler", daemon=True)

    def start(self) -> None:
        """Start (does nothing when the interval is 0)."""
        if self.interval > 0:
            self._thread.start()

    def _loop(self) -> None:
        import shipyard
        from shipyard.sdk.scheduling import scheduler

        shipyard.set_uri(self.settings.store_uri)
        with acting_as("shipyard-scheduler"):
            allowed = [p.strip() for p in self.settings.schedule_targets.split(",") if p.strip()]
            active = scheduler(allowed)
            while True:
                try:
                    for tick in active.run_pending():
                        logger.info("schedule %s: tick %s", tick.schedule, tick.status.value)
                except ShipyardError as exc:
                    logger.warning("scheduler pass failed: %s", exc)
                self.passes += 1
                if self._stop.wait(self.interval):
                    return

    def stop(self) -> None:
        """Stop after the pass in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
