"""OpenLineage run events (spec 2-0-2) for pipeline and step runs.

One START and exactly one of COMPLETE or FAIL per run. Jobs are named ``<pipeline>`` and
``<pipeline>.<step>`` in namespace ``shipyard://<project>``; step runs carry the standard
``parent`` facet, failures ``errorMessage``, code ``sourceCodeLocation``-like data in our own
facet. Shipyard's own data goes in ``shipyard_*`` facets with a versioned schema URL.
Datasets are the content-addressed artifacts: namespace = the artifact store, name = sha256.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shipyard.core.ids import parse_id


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shipyard")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = f"https://github.com/shipyard-mlops/shipyard/tree/v{_version()}"
_FACETS = "https://openlineage.io/spec/facets"
_OWN = "https://shipyard-mlops.github.io/spec/facets/1-0-0"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")


def run_uuid(shipyard_id: str) -> str:
    """The UUID OpenLineage needs, from the 128 bits of a Shipyard id (stable per run)."""
    _, value = parse_id(shipyard_id)
    return str(uuid.UUID(int=value))


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _facet(schema: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def run_event(
    event_type: str,
    *,
    namespace: str,
    job: str,
    run_id: str,
    time_ms: int,
    datasets: str,
    inputs: tuple[str, ...] = (),
    outputs: tuple[tuple[str, str], ...] = (),
    parent: tuple[str, str] | None = None,
    error: str | None = None,
    shipyard: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RunEvent as a JSON-ready dict.

    ``parent`` is (job name, Shipyard run id) of the pipeline run; ``inputs`` are artifact
    digests and ``outputs`` (output name, digest) pairs; ``datasets`` is their namespace.
    """
    facets: dict[str, Any] = {}
    if parent is not None:
        facets["parent"] = _facet(
            f"{_FACETS}/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet",
            run={"runId": run_uuid(parent[1])},
            job={"namespace": namespace, "name": parent[0]},
        )
    if error is not None:
        facets["errorMessage"] = _facet(
            f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
            message=error[-4000:],
            programmingLanguage="python",
        )
    if shipyard:
        facets["shipyard_run"] = _facet(f"{_OWN}/ShipyardRunFacet.json", **shipyard)
    return {
        "eventType": event_type,
        "eventTime": _time(time_ms),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_uuid(run_id), "facets": facets},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [{"namespace": datasets, "name": d, "facets": {}} for d in inputs],
        "outputs": [
            {
                "namespace": datasets,
                "name": digest,
                "facets": {
                    "shipyard_artifact": _facet(
                        f"{_OWN}/ShipyardArtifactDatasetFacet.json", output=name
                    )
                },
            }
            for name, digest in outputs
        ],
    }


def event_kind(event: dict[str, Any]) -> str:
    """``run``, ``job`` or ``dataset``: OpenLineage 2-0-x's three static kinds of event."""
    if "run" in event:
        return "run"
    if "job" in event:
        return "job"
    if "dataset" in event:
        return "dataset"
    raise ValueError("an event holds a run (RunEvent), a job (JobEvent) or a dataset")


def _named(item: object, what: str) -> None:
    if not isinstance(item, dict) or not item.get("namespace") or not item.get("name"):
        raise ValueError(f"{what} needs a namespace and a name")


def check_event(event: object) -> dict[str, Any]:
    """Validate a RunEvent, JobEvent or DatasetEvent (2-0-x); return it, or raise ValueError."""
    if not isinstance(event, dict):
        raise ValueError("an event is a JSON object")
    for key in ("eventTime", "producer", "schemaURL"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise ValueError(f"{key} is required (a string)")
    if not event["schemaURL"].startswith(("https://", "http://")):
        raise ValueError("schemaURL must be the URL of the spec the event follows")
    try:
        datetime.fromisoformat(str(event["eventTime"]).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("eventTime must be an ISO 8601 date-time") from None
    kind = event_kind(event)
    if kind == "run":
        if event.get("eventType", "OTHER") not in EVENT_TYPES:
            raise ValueError(f"eventType must be one of {', '.join(EVENT_TYPES)}")
        run = event.get("run")
        if not isinstance(run, dict) or not isinstance(event.get("job"), dict):
            raise ValueError("run and job are required objects")
        try:
            uuid.UUID(str(run.get("runId")))
        except ValueError:
            raise ValueError("run.runId must be a UUID") from None
    if kind == "dataset":
        _named(event["dataset"], "dataset")
        return event
    job = event.get("job")
    if not isinstance(job, dict):
        raise ValueError("job is a required object")
    for key in ("namespace", "name"):
        if not isinstance(job.get(key), str) or not job[key]:
            raise ValueError(f"job.{key} is required (a string)")
    for side in ("inputs", "outputs"):
        for item in event.get(side) or []:
            _named(item, f"each of {side}")
    return event


def _node(kind: str, text: str) -> str:
    """A lineage node name that fits the edge table (long names are hashed)."""
    import hashlib

    node = f"{kind}:{text}"
    if len(node) <= 128:
        return node
    return f"{kind}:sha256:{hashlib.sha256(text.encode()).hexdigest()}"


def event_edges(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Lineage edges an incoming event implies: datasets -> job run -> datasets for a
    RunEvent, datasets -> job -> datasets for a JobEvent, none for a DatasetEvent."""
    kind = event_kind(event)
    if kind == "dataset":
        return []
    job = event["job"]
    job_node = _node("job", f"{job['namespace']}/{job['name']}")
    middle = job_node
    edges = []
    if kind == "run":
        middle = _node("job_run", str(event["run"]["runId"]))
        edges.append((job_node, middle, "ran"))
    for item in event.get("inputs") or []:
        edges.append((_node("dataset", f"{item['namespace']}/{item['name']}"), middle, "input"))
    for item in event.get("outputs") or []:
        edges.append((middle, _node("dataset", f"{item['namespace']}/{item['name']}"), "output"))
    return edges
