"""Trials on Ray workers sharing one study (the ``ray`` extra).

Each worker is a Ray task running the same trial loop as a local search, against the study
in the shared storage (PostgreSQL for a cluster), with the data put once in Ray's object
store. Workers record their trials as child runs on the driver's store with the driver's
identity. The budget is a wall-clock deadline every worker checks; past it (and the refit's
grace) the driver cancels what is still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shipyard.automl.evaluate import Dataset
from shipyard.automl.trials import (
    LoopSpec,
    make_pruner,
    make_sampler,
    run_trials,
    study_storage,
)
from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings

#: Seconds past the deadline before the driver cancels workers still running.
CANCEL_GRACE = 2.0


def worker_loop(
    index: int,
    storage: str,
    data: Dataset,
    spec: LoopSpec,
    store: dict[str, str | None],
) -> int:
    """One Ray worker: open the study and the store, run trials until the budget ends."""
    import optuna

    from shipyard.bootstrap import build_backend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = Settings(
        uri=store["uri"],
        artifacts=store["artifacts"],
        token=store["token"],
        user=store["user"],
        audit_anchor=store["audit_anchor"],
    )
    backend = build_backend(settings)
    try:
        with study_storage(storage) as opened:
            study = optuna.load_study(
                study_name=spec.study_name,
                storage=opened,
                sampler=make_sampler(spec.seed + index, spec.parallel),
                pruner=make_pruner(),
            )
            return run_trials(study, data, spec, backend.tracking)
    finally:
        backend.close()


def run_on_ray(
    study: Any,
    storage: str,
    data: Dataset,
    spec: LoopSpec,
    settings: Settings,
    n_workers: int,
    on_update: Callable[[Any], None],
) -> int:
    """Run ``n_workers`` trial loops as Ray tasks; return how many trials they ran."""
    from shipyard.executors.ray_tasks import check_reachable, start_ray

    if storage == "memory":
        raise InvalidInputError(
            "Ray workers share the study through a database: pass storage= (or set "
            "SHIPYARD_AUTOML_STORAGE) when the store is a server"
        )
    check_reachable(settings)
    ray = start_ray()
    remote = ray.remote(max_retries=0, num_cpus=spec.n_jobs)(worker_loop)
    data_ref = ray.put(data)
    store = {
        "uri": settings.store_uri,
        "artifacts": settings.artifact_root,
        "token": settings.token.get_secret_value() if settings.token else None,
        "user": settings.actor,
        # The audit chain's signed head: the same file, wherever the worker's folder is.
        "audit_anchor": str(settings.audit_anchor_path.resolve()),
    }
    refs = [remote.remote(i, storage, data_ref, spec, store) for i in range(n_workers)]
    pending = list(refs)
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
        on_update(study)
        if pending and time.time() > spec.budget.deadline + CANCEL_GRACE:
            for ref in pending:
                ray.cancel(ref, force=True)
            break
    done = 0
    for ref in refs:
        try:
            done += int(ray.get(ref, timeout=5))
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
            continue
    return done
