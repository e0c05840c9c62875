"""Where MLflow data is read from: an ``mlruns`` folder or a tracking server's REST API.

Neither needs the mlflow package. The folder is MLflow's file store (experiments, runs with
every metric point, artifacts, MLflow 3's logged models, the registry); the server is read
through the same routes MLflow's client uses, with artifacts through ``mlflow-artifacts``.
A database-backed MLflow (``sqlite:///mlflow.db``) is read through its server:
``mlflow server --backend-store-uri sqlite:///mlflow.db``, then import from its URL.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import httpx
import yaml

from shipyard.core.errors import InvalidInputError, NotFoundError, StoreError
from shipyard.tracking.models import Metric

#: MLflow's run statuses in its file store (RunStatus enum values).
_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
Opener = Callable[[], Iterator[bytes]]


@dataclass
class SourceRun:
    """One MLflow run: its facts, and the keys of its metrics."""

    id: str
    experiment_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_keys: list[str] = field(default_factory=list)
    deleted: bool = False


@dataclass
class SourceLoggedModel:
    """An MLflow 3 logged model: its files live apart from its run's artifacts."""

    id: str
    experiment_id: str
    run_id: str | None
    name: str


@dataclass
class SourceVersion:
    """A registered model version and where its files are."""

    version: int
    run_id: str | None
    source: str
    model_id: str | None
    description: str
    stage: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceModel:
    """A registered model with its versions and aliases."""

    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    versions: list[SourceVersion]


class MlflowSource(Protocol):
    """What the importer reads; one implementation per kind of MLflow installation."""

    def experiments(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(id, name, tags)`` of every active experiment."""
        ...

    def runs(self, experiment_id: str) -> list[SourceRun]:
        """Every active run of an experiment."""
        ...

    def history(self, run: SourceRun, key: str) -> list[Metric]:
        """Every point of one metric."""
        ...

    def run_files(self, run: SourceRun) -> Iterator[tuple[str, int, Opener]]:
        """``(path under the run's artifacts, size, opener of its bytes)`` of every file."""
        ...

    def logged_models(self, experiment_id: str) -> list[SourceLoggedModel]:
        """MLflow 3's logged models of an experiment."""
        ...

    def model_files(self, model: SourceLoggedModel) -> Iterator[tuple[str, int, Opener]]:
        """The files of a logged model."""
        ...

    def registered_models(self) -> list[SourceModel]:
        """The model registry."""
        ...


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _files_under(root: Path) -> Iterator[tuple[str, int, Opener]]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield (
                path.relative_to(root).as_posix(),
                path.stat().st_size,
                lambda p=path: _chunks(p),  # type: ignore[misc]
            )


def _local_path(uri: str, base: Path) -> Path:
    """A ``file://`` (or plain) artifact location of the file store, as a local path."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    raise InvalidInputError(
        f"artifacts at {uri} are not in the mlruns folder {base}; import through a tracking "
        "server that serves them (mlflow server --serve-artifacts)"
    )


class FileSource:
    """MLflow's file store (``mlruns``), read as files."""

    def __init__(self, root: Path) -> None:
        if not (root / "0").is_dir() and not any(root.glob("*/meta.yaml")):
            raise InvalidInputError(f"{root} is not an MLflow mlruns folder (no experiments)")
        self.root = root

    @staticmethod
    def _meta(folder: Path) -> dict[str, Any]:
        data = yaml.safe_load((folder / "meta.yaml").read_text()) or {}
        return dict(data)

    @staticmethod
    def _values(folder: Path) -> dict[str, str]:
        if not folder.is_dir():
            return {}
        return {
            p.relative_to(folder).as_posix(): p.read_text()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    def experiments(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every active experiment folder."""
        found = []
        for meta in sorted(self.root.glob("*/meta.yaml")):
            data = self._meta(meta.parent)
            if data.get("lifecycle_stage", "active") == "active" and "name" in data:
                exp_id = str(data.get("experiment_id", meta.parent.name))
                found.append((exp_id, str(data["name"]), self._values(meta.parent / "tags")))
        return found

    def runs(self, experiment_id: str) -> list[SourceRun]:
        """Every active run folder of an experiment."""
        runs = []
        for meta in sorted((self.root / experiment_id).glob("*/meta.yaml")):
            folder = meta.parent
            if folder.name in ("models", "datasets", "traces"):
                continue
            data = self._meta(folder)
            if "run_id" not in data and "run_uuid" not in data:
                continue
            metrics = folder / "metrics"
            runs.append(
                SourceRun(
                    id=str(data.get("run_id") or data["run_uuid"]),
                    experiment_id=experiment_id,
                    name=str(data.get("run_name") or ""),
                    status=_STATUS.get(int(data.get("status", 3)), "FINISHED"),
                    start_time=int(data.get("start_time") or 0),
                    end_time=int(data["end_time"]) if data.get("end_time") else None,
                    params=self._values(folder / "params"),
                    tags=self._values(folder / "tags"),
                    metric_keys=[
                        p.relative_to(metrics).as_posix()
                        for p in sorted(metrics.rglob("*"))
                        if p.is_file()
                    ]
                    if metrics.is_dir()
                    else [],
                    deleted=data.get("lifecycle_stage") == "deleted",
                )
            )
        return [r for r in runs if not r.deleted]

    def _run_folder(self, run: SourceRun) -> Path:
        return self.root / run.experiment_id / run.id

    def history(self, run: SourceRun, key: str) -> list[Metric]:
        """The lines ``timestamp value step`` of a metric file."""
        points = []
        for line in (self._run_folder(run) / "metrics" / key).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                step = int(parts[2]) if len(parts) > 2 else 0
                points.append(Metric(key, float(parts[1]), step, int(parts[0])))
        return points

    def run_files(self, run: SourceRun) -> Iterator[tuple[str, int, Opener]]:
        """The files of the run's artifact folder."""
        data = self._meta(self._run_folder(run))
        where = data.get("artifact_uri") or str(self._run_folder(run) / "artifacts")
        yield from _files_under(_local_path(str(where), self.root))

    def logged_models(self, experiment_id: str) -> list[SourceLoggedModel]:
        """The ``models/<id>`` folders of an experiment."""
        found = []
        for meta in sorted((self.root / experiment_id / "models").glob("*/meta.yaml")):
            data = self._meta(meta.parent)
            found.append(
                SourceLoggedModel(
                    id=str(data.get("model_id", meta.parent.name)),
                    experiment_id=experiment_id,
                    run_id=data.get("source_run_id"),
                    name=str(data.get("name") or "model"),
                )
            )
        return found

    def model_files(self, model: SourceLoggedModel) -> Iterator[tuple[str, int, Opener]]:
        """The files of a logged model's artifact folder."""
        folder = self.root / model.experiment_id / "models" / model.id
        where = self._meta(folder).get("artifact_location") or str(folder / "artifacts")
        yield from _files_under(_local_path(str(where), self.root))

    def registered_models(self) -> list[SourceModel]:
        """``models/<name>`` with ``version-<n>`` folders, aliases and tags."""
        models = []
        for meta in sorted((self.root / "models").glob("*/meta.yaml")):
            folder = meta.parent
            data = self._meta(folder)
            versions = []
            for vmeta in sorted(folder.glob("version-*/meta.yaml")):
                v = self._meta(vmeta.parent)
                if v.get("current_stage") == "Deleted_Internal":
                    continue
                versions.append(
                    SourceVersion(
                        version=int(v["version"]),
                        run_id=v.get("run_id"),
                        source=str(v.get("source") or ""),
                        model_id=v.get("model_id"),
                        description=str(v.get("description") or ""),
                        stage=str(v.get("current_stage") or "None"),
                        tags=self._values(vmeta.parent / "tags"),
                    )
                )
            aliases = {k: int(v) for k, v in self._values(folder / "aliases").items()}
            models.append(
                SourceModel(
                    name=str(data.get("name", folder.name)),
                    description=str(data.get("description") or ""),
                    tags=self._values(folder / "tags"),
                    aliases=aliases,
                    versions=sorted(versions, key=lambda x: x.version),
                )
            )
        return models


def _kv(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items or []}


class RestSource:
    """A tracking server, read through MLflow's REST API (the routes its client uses)."""

    def __init__(self, uri: str, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base = uri.rstrip("/")
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def _call(self, method: str, route: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, f"/api/2.0/mlflow/{route}", **kwargs)
        except httpx.TransportError as exc:
            raise StoreError(f"cannot reach the MLflow server at {self.base}: {exc}") from exc
        if response.status_code == 404:
            raise NotFoundError(f"{route}: {response.text[:200]}")
        if response.status_code >= 400:
            raise InvalidInputError(
                f"the MLflow server refused {route} ({response.status_code}): {response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        return body

    def _paged(self, method: str, route: str, key: str, body: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        token = None
        while True:
            args = {**body, **({"page_token": token} if token else {})}
            page = (
                self._call(method, route, json=args)
                if method == "POST"
                else self._call(method, route, params=args)
            )
            items.extend(page.get(key, []))
            token = page.get("next_page_token")
            if not token:
                return items

    def experiments(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every active experiment."""
        found = self._paged(
            "POST", "experiments/search", "experiments", {"max_results": 1000, "view_type": 1}
        )
        return [(str(e["experiment_id"]), str(e["name"]), _kv(e.get("tags"))) for e in found]

    def runs(self, experiment_id: str) -> list[SourceRun]:
        """Every active run of an experiment."""
        found = self._paged(
            "POST",
            "runs/search",
            "runs",
            {"experiment_ids": [experiment_id], "max_results": 1000, "run_view_type": 1},
        )
        runs = []
        for item in found:
            info, data = item["info"], item.get("data", {})
            runs.append(
                SourceRun(
                    id=str(info["run_id"]),
                    experiment_id=experiment_id,
                    name=str(info.get("run_name") or ""),
                    status=str(info.get("status", "FINISHED")),
                    start_time=int(info.get("start_time") or 0),
                    end_time=int(info["end_time"]) if info.get("end_time") else None,
                    params=_kv(data.get("params")),
                    tags=_kv(data.get("tags")),
                    metric_keys=sorted({m["key"] for m in data.get("metrics", [])}),
                )
            )
            runs[-1].tags.setdefault("shipyard.mlflow.artifact_uri", str(info["artifact_uri"]))
        return runs

    def history(self, run: SourceRun, key: str) -> list[Metric]:
        """Every point of one metric."""
        points = self._paged(
            "GET",
            "metrics/get-history",
            "metrics",
            {"run_id": run.id, "metric_key": key, "max_results": 25_000},
        )
        return [
            Metric(key, float(p["value"]), int(p.get("step") or 0), int(p["timestamp"]))
            for p in points
        ]

    def _artifact_files(self, uri: str) -> Iterator[tuple[str, int, Opener]]:
        if not uri.startswith("mlflow-artifacts:"):
            raise InvalidInputError(
                f"artifacts at {uri} are not served by the server; start it with "
                "--serve-artifacts (the default) or import the folder they live in"
            )
        root = urlparse(uri).path.strip("/")
        pending = [""]
        while pending:
            rel = pending.pop()
            path = posixpath.join(root, rel) if rel else root
            response = self.http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": path})
            response.raise_for_status()
            for item in response.json().get("files", []):
                child = posixpath.join(rel, item["path"]) if rel else item["path"]
                if item.get("is_dir"):
                    pending.append(child)
                    continue
                url = f"/api/2.0/mlflow-artifacts/artifacts/{root}/{child}"
                yield child, int(item.get("file_size") or 0), lambda u=url: self._stream(u)  # type: ignore[misc]

    def _stream(self, url: str) -> Iterator[bytes]:
        with self.http.stream("GET", url) as response:
            response.raise_for_status()
            yield from response.iter_bytes(1 << 20)

    def run_files(self, run: SourceRun) -> Iterator[tuple[str, int, Opener]]:
        """The run's artifacts through the server's artifact proxy."""
        yield from self._artifact_files(run.tags.get("shipyard.mlflow.artifact_uri", ""))

    def logged_models(self, experiment_id: str) -> list[SourceLoggedModel]:
        """MLflow 3's logged models (none from an MLflow 2 server)."""
        try:
            found = self._paged(
                "POST",
                "logged-models/search",
                "models",
                {"experiment_ids": [experiment_id], "max_results": 100},
            )
        except NotFoundError:
            return []
        self._model_uris = getattr(self, "_model_uris", {})
        models = []
        for item in found:
            info = item["info"]
            self._model_uris[info["model_id"]] = info.get("artifact_uri", "")
            models.append(
                SourceLoggedModel(
                    str(info["model_id"]),
                    experiment_id,
                    info.get("source_run_id"),
                    str(info.get("name") or "model"),
                )
            )
        return models

    def model_files(self, model: SourceLoggedModel) -> Iterator[tuple[str, int, Opener]]:
        """A logged model's files through the artifact proxy."""
        yield from self._artifact_files(getattr(self, "_model_uris", {}).get(model.id, ""))

    def registered_models(self) -> list[SourceModel]:
        """The registry: models, their versions and aliases."""
        found = self._paged(
            "GET", "registered-models/search", "registered_models", {"max_results": 1000}
        )
        models = []
        for item in found:
            name = str(item["name"])
            versions = self._paged(
                "GET",
                "model-versions/search",
                "model_versions",
                {"filter": f"name='{name}'", "max_results": 10_000},
            )
            models.append(
                SourceModel(
                    name=name,
                    description=str(item.get("description") or ""),
                    tags=_kv(item.get("tags")),
                    aliases={a["alias"]: int(a["version"]) for a in item.get("aliases", [])},
                    versions=sorted(
                        (
                            SourceVersion(
                                version=int(v["version"]),
                                run_id=v.get("run_id"),
                                source=str(v.get("source") or ""),
                                model_id=None,
                                description=str(v.get("description") or ""),
                                stage=str(v.get("current_stage") or "None"),
                                tags=_kv(v.get("tags")),
                            )
                            for v in versions
                        ),
                        key=lambda x: x.version,
                    ),
                )
            )
        return models

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def open_source(where: str, token: str | None = None) -> FileSource | RestSource:
    """The source a ``--from`` value names: an http(s) tracking URI or an mlruns folder."""
    if where.startswith(("http://", "https://")):
        return RestSource(where, token)
    if where.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
        raise InvalidInputError(
            f"{where} is an MLflow database: serve it with `mlflow server --backend-store-uri "
            f"{where}` and import from the server's URL"
        )
    path = Path(where.removeprefix("file://")).expanduser()
    if not path.is_dir():
        raise InvalidInputError(f"{where} is neither a tracking server URL nor an mlruns folder")
    return FileSource(path)
