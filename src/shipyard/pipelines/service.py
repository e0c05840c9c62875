"""Run a traced pipeline: cache lookups, tracked step runs, stored outputs, lineage."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shipyard.core.blobs import BlobStore
from shipyard.core.clock import now_ms
from shipyard.core.errors import (
    InvalidInputError,
    NotFoundError,
    PipelineError,
    ShipyardError,
    StoreError,
)
from shipyard.core.ids import new_id
from shipyard.pipelines import openlineage
from shipyard.pipelines._source import code_hash
from shipyard.pipelines.capture import LOG_ARTIFACT, captured
from shipyard.pipelines.executors import (
    Executor,
    LocalExecutor,
    StepFailedError,
    StepJob,
    WorkResult,
)
from shipyard.pipelines.graph import Graph, Node, PipelineDefinition, Step, StepOutput
from shipyard.pipelines.materializers import MaterializerRegistry
from shipyard.pipelines.models import (
    OutputRecord,
    PipelineRunRecord,
    PipelineStatus,
    StepRunRecord,
    StepStatus,
)
from shipyard.pipelines.ports import LineageSink, PipelineStore
from shipyard.tracking.models import RunStatus
from shipyard.tracking.service import TrackingService

logger = logging.getLogger(__name__)

Activate = Callable[[str], contextlib.AbstractContextManager[None]]
OnEvent = Callable[[str, StepStatus], None]


def artifact_node(digest: str) -> str:
    """The lineage node of a stored blob."""
    return f"artifact:{digest}"


class PipelineRunner:
    """Executes pipelines on the local backend's services."""

    def __init__(
        self,
        tracking: TrackingService,
        blobs: BlobStore,
        store: PipelineStore,
        materializers: MaterializerRegistry | None = None,
        *,
        activate: Activate | None = None,
        executors: Mapping[str, Callable[[], Executor]] | None = None,
        lineage: LineageSink | None = None,
        namespace: str = "shipyard://default",
        datasets: str = "file://",
    ) -> None:
        self.lineage = lineage
        self._pipelines: dict[str, str] = {}  # pipeline run id -> pipeline name, for events
        self.namespace = namespace
        self.datasets = datasets
        self.tracking = tracking
        self.executors = dict(executors or {})
        self.blobs = blobs
        self.store = store
        self.materializers = materializers or MaterializerRegistry()
        self.activate = activate

    # public ---------------------------------------------------------------------------

    def run(
        self,
        definition: PipelineDefinition,
        params: dict[str, Any],
        *,
        executor: str = "local",
        cache: bool = True,
        from_strings: bool = False,
        on_event: OnEvent | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRunRecord:
        """Validate parameters, trace the DAG, and run it (``tags`` go on its tracked run)."""
        if executor != "local" and executor not in self.executors:
            allowed = ", ".join(["local", *self.executors])
            raise InvalidInputError(f"executor must be one of {allowed}; got {executor!r}")
        graph = definition.build(definition.validate_params(params, from_strings=from_strings))
        return self._execute(graph, executor, cache and definition.cache, {}, on_event, tags)

    def resume(
        self,
        definition: PipelineDefinition,
        pipeline_run_id: str,
        *,
        on_event: OnEvent | None = None,
    ) -> PipelineRunRecord:
        """Rerun a failed pipeline run from its failure, reusing the steps that finished."""
        previous = self.store.get_pipeline_run(pipeline_run_id)
        if previous.pipeline != definition.name:
            raise InvalidInputError(
                f"run {pipeline_run_id} belongs to pipeline {previous.pipeline!r}, "
                f"not {definition.name!r}"
            )
        if previous.status is PipelineStatus.COMPLETED:
            raise InvalidInputError(f"pipeline run {pipeline_run_id} already completed")
        reuse = {s.step: s.outputs for s in previous.steps if s.status.is_done}
        graph = definition.build(definition.validate_params(previous.params))
        return self._execute(graph, previous.executor, definition.cache, reuse, on_event)

    def load_output(self, record: OutputRecord) -> Any:
        """Read a stored output back into a value, checking its bytes against the digest."""
        materializer = self.materializers.by_name(record.materializer)
        tmp = Path(tempfile.mkdtemp(prefix="shipyard-output-"))
        path = tmp / f"{record.name}.bin"
        digest = hashlib.sha256()
        with path.open("wb") as out:
            for chunk in self.blobs.read_chunks(record.digest):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != record.digest:
            raise StoreError(
                f"output {record.name!r} does not match its recorded sha256 "
                f"{record.digest[:12]}...: the stored bytes were altered"
            )
        return materializer.load(path, dict(record.meta))

    # execution -------------------------------------------------------------------------

    def _execute(
        self,
        graph: Graph,
        executor: str,
        cache: bool,
        reuse: dict[str, tuple[OutputRecord, ...]],
        on_event: OnEvent | None,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRunRecord:
        pool = self._executor(executor)
        run_id = new_id("prun")
        tracked = self.tracking.create_run(
            graph.pipeline,
            name=f"{graph.pipeline}-{run_id[-6:]}",
            tags={
                "shipyard.pipeline": graph.pipeline,
                "shipyard.pipeline_run": run_id,
                "shipyard.pipeline_target": graph.target,
                **(tags or {}),
            },
        )
        self.tracking.log_batch(tracked.id, params={k: _text(v) for k, v in graph.params.items()})
        record = PipelineRunRecord(
            id=run_id,
            pipeline=graph.pipeline,
            status=PipelineStatus.RUNNING,
            params=graph.params,
            run_id=tracked.id,
            started_at=now_ms(),
            ended_at=None,
            executor=executor,
        )
        self.store.create_pipeline_run(record)
        self.store.add_edges([(f"pipeline_run:{run_id}", f"run:{tracked.id}", "tracked_as")])
        self._pipelines[run_id] = graph.pipeline
        self._event(
            "START",
            graph.pipeline,
            run_id,
            shipyard={
                "pipeline_run_id": run_id,
                "tracked_run_id": tracked.id,
                "executor": executor,
            },
        )
        order = graph.order()
        position = {name: i for i, name in enumerate(order)}
        outputs: dict[str, tuple[OutputRecord, ...]] = {}
        failed: set[str] = set()
        running: dict[Future[WorkResult], _Running] = {}
        hashes: dict[int, str] = {}  # code hash per step function, once per run
        waiting = list(order)
        try:
            while waiting or running:
                progressed = False
                for name in list(waiting):
                    node = graph.nodes[name]
                    upstream = node.upstream()
                    if upstream & failed:
                        progressed = True
                        waiting.remove(name)
                        self._skip(run_id, name, position[name], on_event)
                        failed.add(name)
                    elif upstream <= outputs.keys():
                        progressed = True
                        waiting.remove(name)
                        started = self._start(
                            graph,
                            node,
                            run_id,
                            tracked.id,
                            position[name],
                            outputs,
                            cache,
                            reuse,
                            on_event,
                            hashes,
                        )
                        if isinstance(started, StepRunRecord):
                            outputs[name] = started.outputs
                        else:
                            running[pool.submit(started.job, node.step)] = started
                if not running:
                    if not waiting:
                        break
                    if not progressed:
                        raise PipelineError(
                            f"pipeline {graph.pipeline!r} cannot schedule {sorted(waiting)}"
                        )
                    continue
                wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
                pool.check_deadlines()
                for future in [f for f in running if f.done()]:
                    started = running.pop(future)
                    result = self._finish(started, future, on_event)
                    if result.status.is_done:
                        outputs[started.node.name] = result.outputs
                    else:
                        failed.add(started.node.name)
        finally:
            pool.close()
        status = PipelineStatus.FAILED if failed else PipelineStatus.COMPLETED
        self.store.finish_pipeline_run(run_id, status, now_ms())
        self._event(
            "FAIL" if failed else "COMPLETE",
            graph.pipeline,
            run_id,
            error=f"steps failed: {', '.join(sorted(failed))}" if failed else None,
            shipyard={"pipeline_run_id": run_id, "tracked_run_id": tracked.id},
        )
        self.tracking.end_run(tracked.id, RunStatus.FAILED if failed else RunStatus.FINISHED)
        return self.store.get_pipeline_run(run_id)

    def _executor(self, name: str) -> Executor:
        if name == "local":
            return LocalExecutor(self.work)
        factory = self.executors.get(name)
        if factory is None:
            allowed = ", ".join(["local", *self.executors])
            raise InvalidInputError(f"executor must be one of {allowed}; got {name!r}")
        return factory()

    def _skip(self, run_id: str, name: str, position: int, on_event: OnEvent | None) -> None:
        skipped = StepRunRecord(
            new_id("srun"),
            run_id,
            name,
            StepStatus.SKIPPED,
            None,
            None,
            None,
            None,
            error="an upstream step failed",
        )
        self.store.save_step_run(skipped, position)
        _emit(on_event, name, StepStatus.SKIPPED)

    def _cache_key(
        self, node: Node, inputs: dict[str, str], params: dict[str, Any], code: str
    ) -> str:
        material = {
            "code": code,
            "inputs": inputs,
            "params": {k: _canonical(v) for k, v in params.items()},
            "materializers": self.materializers.fingerprint(),
            "environment": list(node.step.options.environment),
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def _start(
        self,
        graph: Graph,
        node: Node,
        pipeline_run_id: str,
        parent_run_id: str,
        position: int,
        outputs: dict[str, tuple[OutputRecord, ...]],
        cache: bool,
        reuse: dict[str, tuple[OutputRecord, ...]],
        on_event: OnEvent | None,
        hashes: dict[int, str],
    ) -> StepRunRecord | _Running:
        """Reuse cached outputs, or open the step's tracked run and make its job."""
        step = node.step
        input_refs: dict[str, OutputRecord] = {}
        params: dict[str, Any] = {}
        for arg, value in node.args.items():
            if isinstance(value, StepOutput):
                input_refs[arg] = _output(outputs[value.node], value.name)
            else:
                params[arg] = value
        code = hashes.get(id(step.fn)) or hashes.setdefault(id(step.fn), code_hash(step.fn))
        key = self._cache_key(node, {a: r.digest for a, r in input_refs.items()}, params, code)
        record = StepRunRecord(
            id=new_id("srun"),
            pipeline_run_id=pipeline_run_id,
            step=node.name,
            status=StepStatus.RUNNING,
            cache_key=key,
            run_id=None,
            started_at=now_ms(),
            ended_at=None,
            inputs=tuple(r.digest for r in input_refs.values()),
            code_hash=code,
        )
        reused = reuse.get(node.name)
        use_cache = cache and step.options.cache
        cached = (
            reused if reused is not None else (self.store.get_cache(key) if use_cache else None)
        )
        if cached is not None and not all(self.blobs.exists(o.digest) for o in cached):
            logger.warning("cache entry of step %s lost a blob; running it again", node.name)
            self.store.drop_cache(key)
            cached = None
        if cached is not None:
            logger.info("Using cached version of %s", node.name)
            done = replace(record, status=StepStatus.CACHED, ended_at=now_ms(), outputs=cached)
            self.store.save_step_run(
                done, position, edges=self._edges(pipeline_run_id, done, input_refs)
            )
            _emit(on_event, node.name, StepStatus.CACHED)
            for kind in ("START", "COMPLETE"):
                self._step_event(kind, done, cached=True)
            return done
        _emit(on_event, node.name, StepStatus.RUNNING)
        child = self.tracking.create_run(
            graph.pipeline,
            name=node.name,
            parent_id=parent_run_id,
            tags={
                "shipyard.step": node.name,
                "shipyard.pipeline_run": pipeline_run_id,
                "shipyard.cache_key": key,
            },
        )
        # No step-run row is written until the step ends (one transaction fewer per step):
        # while it runs, its tracked run (RUNNING, tagged with the pipeline run) shows it.
        record = replace(record, run_id=child.id)
        self._step_event("START", record)
        job = StepJob(
            node=node.name,
            step_attr=step.fn.__name__,
            target=graph.target,
            run_id=child.id,
            options=step.options,
            params=params,
            inputs=input_refs,
        )
        return _Running(node, record, position, job)

    def _finish(
        self, started: _Running, future: Future[WorkResult], on_event: OnEvent | None
    ) -> StepRunRecord:
        record, node = started.record, started.node
        if record.run_id is None:
            raise PipelineError(f"step {node.name!r} started without a tracked run")
        try:
            result = future.result()
        except StepFailedError as exc:
            failed = replace(
                record,
                status=StepStatus.FAILED,
                ended_at=now_ms(),
                attempts=exc.attempts,
                error=exc.traceback_text,
            )
            self.store.save_step_run(failed, started.position, end_tracked_run=RunStatus.FAILED)
            _emit(on_event, node.name, StepStatus.FAILED)
            self._step_event("FAIL", failed)
            return failed
        done = replace(
            record,
            status=StepStatus.COMPLETED,
            ended_at=now_ms(),
            attempts=result.attempts,
            outputs=result.outputs,
        )
        self.store.save_step_run(
            done,
            started.position,
            edges=self._edges(record.pipeline_run_id, done, started.job.inputs),
            cache=node.step.options.cache,
            end_tracked_run=RunStatus.FINISHED,
        )
        _emit(on_event, node.name, StepStatus.COMPLETED)
        self._step_event("COMPLETE", done)
        return done

    # OpenLineage ---------------------------------------------------------------------------

    def _event(self, kind: str, job: str, run_id: str, **extra: Any) -> None:
        if self.lineage is None:
            return
        event = openlineage.run_event(
            kind,
            namespace=self.namespace,
            job=job,
            run_id=run_id,
            time_ms=now_ms(),
            datasets=self.datasets,
            **extra,
        )
        self.lineage.emit(event)

    def _step_event(self, kind: str, record: StepRunRecord, *, cached: bool = False) -> None:
        if self.lineage is None:
            return
        pipeline_name = self._pipelines.get(record.pipeline_run_id, "pipeline")
        done = kind in ("COMPLETE", "FAIL")
        self._event(
            kind,
            f"{pipeline_name}.{record.step}",
            record.id,
            inputs=record.inputs,
            outputs=tuple((o.name, o.digest) for o in record.outputs) if done else (),
            parent=(pipeline_name, record.pipeline_run_id),
            error=record.error if kind == "FAIL" else None,
            shipyard={
                "step_run_id": record.id,
                "pipeline_run_id": record.pipeline_run_id,
                "tracked_run_id": record.run_id,
                "cache_hit": cached,
                "code_hash": record.code_hash,
            },
        )

    def work(self, job: StepJob, step: Step) -> WorkResult:
        """Run one step here: load inputs, call it with retries and timeout, store outputs.

        Raises:
            StepFailedError: the step failed; carries its traceback and the attempts made.
        """
        with captured() as output:
            try:
                return self._work(job, step)
            finally:
                self._keep_log(job, output.text())

    def _keep_log(self, job: StepJob, text: str) -> None:
        """Store what the step printed and logged with its tracked run (never fails it)."""
        if not text.strip():
            return
        try:
            self.tracking.log_bytes(job.run_id, text.encode("utf-8", "replace"), LOG_ARTIFACT)
        except ShipyardError as exc:
            logger.warning("could not keep the log of step %s: %s", job.node, exc)

    def _work(self, job: StepJob, step: Step) -> WorkResult:
        attempts = 0
        try:
            with tempfile.TemporaryDirectory(prefix=f"shipyard-{job.node}-") as tmp:
                kwargs = dict(job.params)
                for arg, ref in job.inputs.items():
                    kwargs[arg] = self.load_output(ref)
                while True:
                    attempts += 1
                    try:
                        value = self._call(job, step, kwargs)
                        break
                    except Exception as exc:  # user code may raise anything: retry or give up
                        if attempts > job.options.retries or isinstance(exc, _StepTimeoutError):
                            raise
                        delay = job.options.delay(attempts)
                        logger.warning(
                            "step %s failed (attempt %d), retrying in %.1fs: %s",
                            job.node,
                            attempts,
                            delay,
                            exc,
                        )
                        time.sleep(delay)
                stored = self._store_outputs(job.node, step, value, Path(tmp))
        except Exception as exc:  # the step's failure is its result: kept with its traceback
            text = "".join(traceback.format_exception(exc))[-20_000:]
            raise StepFailedError(str(exc), text, attempts) from exc
        return WorkResult(stored, attempts)

    def _call(self, job: StepJob, step: Step, kwargs: dict[str, Any]) -> Any:
        def invoke() -> Any:
            with self.activate(job.run_id) if self.activate else contextlib.nullcontext():
                return step.fn(**kwargs)

        timeout = job.options.timeout
        if timeout is None:
            return invoke()
        # In process a hung step cannot be killed: it is abandoned on its thread and the
        # run goes on (the process-pool executor will kill it outright).
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"step-{job.node}")
        future = pool.submit(contextvars.copy_context().run, invoke)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout as exc:
            raise _StepTimeoutError(
                f"step {job.node!r} timed out after {timeout:g}s; it ran in this process, "
                "which cannot stop it: it was abandoned on its thread and may still be running "
                "(executor='process' or 'ray' stops a step's worker at its timeout)"
            ) from exc
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _store_outputs(
        self, node_name: str, step: Step, value: Any, tmp: Path
    ) -> tuple[OutputRecord, ...]:
        names = step.output_names
        types = step.output_types
        if names == ["output"]:
            values = [value]
        else:
            if not isinstance(value, tuple) or len(value) != len(names):
                raise PipelineError(
                    f"step {node_name!r} must return a tuple of {len(names)} values "
                    f"(its annotation says so); got {type(value).__name__}",
                    step=node_name,
                )
            values = list(value)
        records = []
        for name, tp, item in zip(names, types, values, strict=True):
            materializer = self.materializers.for_value(tp, item, node_name, name)
            path = tmp / f"out-{name}"
            meta = materializer.save(item, path)
            ref = self.blobs.put_file(path)
            records.append(
                OutputRecord(
                    name, ref.digest, ref.size, materializer.name, type(item).__qualname__, meta
                )
            )
        return tuple(records)

    def _edges(
        self, pipeline_run_id: str, step_run: StepRunRecord, inputs: dict[str, OutputRecord]
    ) -> list[tuple[str, str, str]]:
        node = f"step_run:{step_run.id}"
        edges = [(f"pipeline_run:{pipeline_run_id}", node, "contains")]
        edges += [(artifact_node(r.digest), node, f"input:{arg}") for arg, r in inputs.items()]
        edges += [(node, artifact_node(o.digest), f"output:{o.name}") for o in step_run.outputs]
        if step_run.code_hash:
            edges.append((f"code:{step_run.code_hash}", node, "code"))
        if step_run.run_id:
            edges.append((node, f"run:{step_run.run_id}", "tracked_as"))
        return edges


class _StepTimeoutError(PipelineError):
    """A step ran past its timeout (never retried)."""


@dataclass(frozen=True)
class _Running:
    """A step handed to an executor, with what is needed to record its end."""

    node: Node
    record: StepRunRecord
    position: int
    job: StepJob


def _output(records: tuple[OutputRecord, ...], name: str) -> OutputRecord:
    for record in records:
        if record.name == name:
            return record
    raise NotFoundError(f"no output {name!r}")


def _canonical(value: Any) -> Any:
    try:
        json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _text(value: Any) -> str:
    return json.dumps(value, default=repr) if not isinstance(value, str) else value


def _emit(on_event: OnEvent | None, name: str, status: StepStatus) -> None:
    if on_event is not None:
        on_event(name, status)
