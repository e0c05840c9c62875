"""ActiveRun: a started run with its metric buffer; a context manager like MLflow's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

from shipyard.bootstrap import Backend
from shipyard.core.clock import now_ms
from shipyard.core.names import check_key, check_metric_value, check_step
from shipyard.tracking.buffer import MetricBuffer
from shipyard.tracking.models import Metric, Run, RunStatus


class ActiveRun:
    """A run being tracked: metrics are buffered and written in bulk in the background."""

    def __init__(
        self,
        run: Run,
        backend: Backend,
        *,
        buffer_size: int,
        flush_interval: float,
        on_end: Callable[[ActiveRun], None],
    ) -> None:
        self.info = run
        self.backend = backend
        self._on_end = on_end
        self._keys: set[str] = set()
        self._ended = False
        self.buffer = MetricBuffer(
            run.id,
            backend.tracking.write_batch,
            max_points=buffer_size,
            interval=flush_interval,
            heartbeat=lambda: backend.tracking.heartbeat(run.id),
        )
        self.buffer.start()

    @property
    def id(self) -> str:
        """The run id."""
        return self.info.id

    def _key(self, key: str) -> str:
        if key not in self._keys:
            check_key(key, "metric key")
            self._keys.add(key)
        return key

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Buffer one point (validated now, written within the flush interval)."""
        if type(value) is not float:
            value = check_metric_value(value, key)
        self.buffer.add(
            self._key(key),
            value,
            0 if step is None else (step if type(step) is int and step >= 0 else check_step(step)),
            now_ms() if timestamp is None else timestamp,
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metrics at one step and time."""
        ts = now_ms()
        st = 0 if step is None else check_step(step)
        self.buffer.add_many(
            [Metric(self._key(k), check_metric_value(v, k), st, ts) for k, v in metrics.items()]
        )

    def log_params(self, params: Mapping[str, object]) -> None:
        """Write params now (they are few, and a conflicting value should fail here)."""
        self.backend.tracking.log_batch(self.id, params=params)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Write tags now."""
        self.backend.tracking.log_batch(self.id, tags=tags)

    def flush(self) -> None:
        """Write buffered metrics now."""
        self.buffer.flush()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """Flush metrics, then mark the run ended; durable once this returns."""
        if self._ended:
            return self.info
        self._ended = True
        try:
            self.buffer.close()
        finally:
            self.info = self.backend.tracking.end_run(self.id, status)
            self._on_end(self)
        return self.info

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.info.name!r}>"
