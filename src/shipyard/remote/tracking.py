"""RestTrackingStore and RestRunArtifacts: the tracking ports over the REST API."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from shipyard.core.errors import InvalidInputError, StoreError
from shipyard.core.paths import check_artifact_name
from shipyard.remote.client import RestClient, json_body, seg
from shipyard.tracking.artifacts import verified_chunks
from shipyard.tracking.models import (
    ArtifactRecord,
    Experiment,
    Metric,
    MetricBatch,
    Run,
    RunPage,
    RunSource,
    RunStatus,
)
from shipyard.tracking.search import RunQuery
from shipyard.wire.schemas import (
    ArtifactList,
    ArtifactRead,
    BatchCreate,
    ExperimentCreate,
    ExperimentList,
    ExperimentRead,
    MetricHistory,
    MetricWire,
    RunCreate,
    RunPageRead,
    RunRead,
    RunSearch,
    RunUpdate,
    SourceWire,
)


class RestTrackingStore:
    """TrackingStore over HTTP."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def create_experiment(self, name: str, tags: dict[str, str]) -> Experiment:
        """POST /api/v1/experiments."""
        data = self.client.json(
            "POST",
            "/api/v1/experiments",
            idempotent=False,
            **json_body(ExperimentCreate(name=name, tags=tags)),
        )
        return ExperimentRead.model_validate(data).domain()

    def get_experiment(self, experiment_id: str) -> Experiment:
        """GET /api/v1/experiments/{id}."""
        data = self.client.json("GET", f"/api/v1/experiments/{seg(experiment_id)}")
        return ExperimentRead.model_validate(data).domain()

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """GET /api/v1/experiments?name=..."""
        data = self.client.json("GET", "/api/v1/experiments", params={"name": name})
        found = ExperimentList.model_validate(data).experiments
        return found[0].domain() if found else None

    def list_experiments(self) -> list[Experiment]:
        """GET /api/v1/experiments."""
        data = self.client.json("GET", "/api/v1/experiments")
        return [e.domain() for e in ExperimentList.model_validate(data).experiments]

    def create_run(
        self,
        experiment_id: str,
        name: str,
        parent_id: str | None,
        tags: dict[str, str],
        source: RunSource,
    ) -> Run:
        """POST /api/v1/runs."""
        body = RunCreate(
            experiment_id=experiment_id,
            name=name,
            parent_id=parent_id,
            tags=tags,
            source=SourceWire(git_commit=source.git_commit, entry_point=source.entry_point),
        )
        data = self.client.json("POST", "/api/v1/runs", idempotent=False, **json_body(body))
        return RunRead.model_validate(data).domain()

    def get_run(self, run_id: str) -> Run:
        """GET /api/v1/runs/{id}."""
        return RunRead.model_validate(
            self.client.json("GET", f"/api/v1/runs/{seg(run_id)}")
        ).domain()

    def set_run_status(self, run_id: str, status: RunStatus, end_time: int | None) -> Run:
        """PATCH /api/v1/runs/{id} (the server stamps the end time)."""
        data = self.client.json(
            "PATCH", f"/api/v1/runs/{seg(run_id)}", **json_body(RunUpdate(status=status))
        )
        return RunRead.model_validate(data).domain()

    def delete_run(self, run_id: str) -> None:
        """DELETE /api/v1/runs/{id}."""
        self.client.request("DELETE", f"/api/v1/runs/{seg(run_id)}")

    def heartbeat(self, run_id: str, at: int) -> None:
        """POST /api/v1/runs/{id}/heartbeat (the server stamps the time)."""
        self.client.request("POST", f"/api/v1/runs/{seg(run_id)}/heartbeat")

    def expire_runs(self, silent_since: int, at: int) -> list[str]:
        """POST /api/v1/runs/expire (admin): the server ends its own stale runs."""
        data = self.client.json(
            "POST",
            "/api/v1/runs/expire",
            idempotent=False,
            content=json.dumps({"silent_since": silent_since}),
            headers={"Content-Type": "application/json"},
        )
        return [str(i) for i in data["expired"]]

    def log_batch(self, batch: MetricBatch) -> None:
        """POST /api/v1/runs/{id}/batch; retried safely thanks to the batch id."""
        body = BatchCreate(
            batch_id=batch.batch_id,
            metrics=[
                MetricWire(key=m.key, value=m.value, step=m.step, timestamp=m.timestamp)
                for m in batch.metrics
            ],
            params=batch.params,
            tags=batch.tags,
        )
        self.client.request("POST", f"/api/v1/runs/{seg(batch.run_id)}/batch", **json_body(body))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """GET /api/v1/runs/{id}/metrics/history?key=..."""
        body = self.client.content(
            "GET", f"/api/v1/runs/{seg(run_id)}/metrics/history", params={"key": key}
        )
        return [m.domain() for m in MetricHistory.model_validate_json(body).metrics]

    def search_runs(self, experiment_ids: list[str], query: RunQuery) -> RunPage:
        """POST /api/v1/runs/search with the query's original text."""
        body = RunSearch(
            experiment_ids=experiment_ids,
            filter=query.filter_text or None,
            order_by=list(query.order_by_text),
            max_results=query.max_results,
            page_token=query.page_token,
        )
        page = RunPageRead.model_validate_json(
            self.client.content("POST", "/api/v1/runs/search", **json_body(body))
        )
        return RunPage([r.domain() for r in page.runs], page.next_page_token)


class RestRunArtifacts:
    """RunArtifactStore over HTTP: uploads and downloads are streamed."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def log_chunks(
        self,
        run_id: str,
        name: str,
        chunks: Iterable[bytes],
        media_type: str,
        max_size: int | None = None,
    ) -> ArtifactRecord:
        """PUT /api/v1/runs/{id}/artifacts/{name}."""
        data = self.client.upload(
            f"/api/v1/runs/{seg(run_id)}/artifacts/{quote(name)}", chunks, media_type
        )
        return ArtifactRead.model_validate(data).domain()

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """GET /api/v1/runs/{id}/artifacts."""
        data = self.client.json("GET", f"/api/v1/runs/{seg(run_id)}/artifacts")
        records = [a.domain() for a in ArtifactList.model_validate(data).artifacts]
        for record in records:
            try:
                check_artifact_name(record.name)
            except InvalidInputError:
                # A server (or whoever answers as one) must not steer where files land.
                raise StoreError(
                    f"the server listed an unsafe artifact name {record.name[:80]!r}; refusing",
                    run_id=run_id,
                ) from None
        return records

    def get_artifact(self, run_id: str, name: str) -> ArtifactRecord:
        """GET /api/v1/runs/{id}/artifacts/{name}?meta=true."""
        data = self.client.json(
            "GET", f"/api/v1/runs/{seg(run_id)}/artifacts/{quote(name)}", params={"meta": "true"}
        )
        return ArtifactRead.model_validate(data).domain()

    def read_artifact(self, run_id: str, name: str) -> Iterator[bytes]:
        """GET /api/v1/runs/{id}/artifacts/{name}, checked against the recorded digest."""
        record = self.get_artifact(run_id, name)
        return verified_chunks(
            self.client.download(f"/api/v1/runs/{seg(run_id)}/artifacts/{quote(name)}"), record
        )
