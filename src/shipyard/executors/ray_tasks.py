"""The Ray executor (``executor="ray"``, the ``ray`` extra): each step is a Ray task.

Artifacts travel through the blob store, never through the driver: a task reads its inputs
from the store and writes its outputs there, returning only small records. Shipyard, not
Ray, owns retries and caching. With ``RAY_ADDRESS`` the steps run on that cluster (with
the driver's token when the store is a server); otherwise a private Ray starts on
127.0.0.1, without its dashboard and with usage statistics off.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from shipyard.core.errors import InvalidInputError, PipelineError
from shipyard.core.settings import Settings
from shipyard.executors.processes import WorkerFactory, run_in_worker
from shipyard.pipelines.executors import StepFailedError, StepJob, WorkResult
from shipyard.pipelines.graph import Step


def _ray() -> Any:
    # Ray reads this when it starts: no usage statistics leave the machine.
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
    except ImportError as exc:
        raise InvalidInputError("executor 'ray' needs Ray: pip install 'shipyard[ray]'") from exc
    return ray


def start_ray(num_cpus: int | None = None) -> Any:
    """Connect to RAY_ADDRESS, or start a private local Ray on 127.0.0.1."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address="127.0.0.1",
        )
    return ray


def check_reachable(settings: Settings) -> None:
    """Workers of a cluster beyond this machine must reach the store and the blobs too:
    refuse local paths there (a server URI, or PostgreSQL with S3, works from anywhere)."""
    address = os.environ.get("RAY_ADDRESS") or ""
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    if not address or host in ("", "auto", "local", "127.0.0.1", "localhost", "::1"):
        return
    local = [
        what
        for what, value in (("store", settings.store_uri), ("artifacts", settings.artifact_root))
        if value.startswith("sqlite") or "://" not in value or value.startswith("file://")
    ]
    if local:
        raise InvalidInputError(
            f"RAY_ADDRESS={address} is a cluster beyond this machine, whose workers cannot "
            f"see this machine's {' and '.join(local)} ({settings.store_uri}); point "
            "SHIPYARD_URI at a server (http://...) or use PostgreSQL with s3:// artifacts"
        )


@dataclass
class _Task:
    job: StepJob
    ref: Any
    outer: Future[WorkResult]
    deadline: float | None


class RayExecutor:
    """Steps as Ray tasks, with the step's declared cpus and memory."""

    name = "ray"

    def __init__(
        self, settings: Settings, factory: WorkerFactory, num_cpus: int | None = None
    ) -> None:
        self.settings = settings
        self.factory = factory
        check_reachable(settings)
        self.ray = start_ray(num_cpus)
        self._token = settings.token.get_secret_value() if settings.token else None
        self._remote = self.ray.remote(max_retries=0)(run_in_worker)
        self._tasks: list[_Task] = []

    def submit(self, job: StepJob, step: Step) -> Future[WorkResult]:
        """Start a Ray task for the step."""
        if ":" not in job.target or "<" in job.target:
            raise PipelineError(
                f"step {job.node!r}: the ray executor needs the pipeline defined at module "
                "level in a file or module"
            )
        options: dict[str, Any] = {"num_cpus": job.options.cpus}
        if job.options.memory_mb:
            options["memory"] = job.options.memory_mb * 1024 * 1024
        ref = self._remote.options(**options).remote(
            self.factory, self.settings.store_uri, self.settings.artifact_root, job, self._token
        )
        outer: Future[WorkResult] = Future()
        deadline = time.monotonic() + job.options.timeout if job.options.timeout else None
        task = _Task(job, ref, outer, deadline)
        self._tasks.append(task)
        ref.future().add_done_callback(lambda inner, task=task: self._settle(task, inner))
        return outer

    def _settle(self, task: _Task, inner: Future[Any]) -> None:
        if task.outer.done():
            return
        try:
            task.outer.set_result(inner.result())
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if hasattr(exc, "cause") else None
            if isinstance(cause, StepFailedError):
                task.outer.set_exception(cause)
            else:
                task.outer.set_exception(StepFailedError(str(exc), str(exc)[-20_000:], 1))
        except (
            self.ray.exceptions.WorkerCrashedError,
            self.ray.exceptions.TaskCancelledError,
        ) as exc:
            task.outer.set_exception(
                StepFailedError(
                    f"step {task.job.node!r} killed its worker",
                    f"PipelineError: step {task.job.node!r} killed its Ray worker "
                    f"({type(exc).__name__})",
                    1,
                )
            )
        except Exception as exc:  # noqa: BLE001 - any Ray failure becomes the step's failure
            task.outer.set_exception(StepFailedError(str(exc), f"{type(exc).__name__}: {exc}", 1))

    def check_deadlines(self) -> None:
        """Force-cancel tasks past their timeout."""
        now = time.monotonic()
        for task in list(self._tasks):
            if task.outer.done():
                self._tasks.remove(task)
            elif task.deadline is not None and now > task.deadline:
                self._tasks.remove(task)
                task.outer.set_exception(
                    StepFailedError(
                        f"step {task.job.node!r} timed out",
                        f"PipelineError: step {task.job.node!r} timed out after "
                        f"{task.job.options.timeout:g}s (its Ray task was cancelled)",
                        1,
                    )
                )
                self.ray.cancel(task.ref, force=True)

    def close(self) -> None:
        """Leave Ray running for the next pipeline in this process."""
        self._tasks.clear()
