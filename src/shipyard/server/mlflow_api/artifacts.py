"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/...``) over run artifacts.

MLflow's client resolves ``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>`` against
the tracking server and uploads with PUT, downloads with GET and lists folders with
``GET ...?path=``. Here those paths are a run's artifacts, with the same ownership rules,
size limit and download headers as Shipyard's own artifact routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.server.jsonbody import JsonRoute
from shipyard.server.tracking import _svc, artifact_response, store_upload

router = APIRouter(prefix="/api/2.0/mlflow-artifacts", tags=["mlflow"], route_class=JsonRoute)


def _locate(path: str) -> tuple[str, str]:
    """The run and artifact name (or folder, maybe empty) an MLflow artifact path names."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[1].startswith("run_"):
        raise NotFoundError(
            f"{path[:200]!r} is not a run artifact path (<experiment>/<run>/artifacts/<name>)"
        )
    return parts[1], parts[3] if len(parts) == 4 else ""


@router.get("/artifacts")
def list_artifacts(
    request: Request, path: Annotated[str, Query(max_length=2000)] = ""
) -> dict[str, Any]:
    """The files and folders directly under a run's artifact folder."""
    run_id, folder = _locate(path)
    svc = _svc(request)
    svc.get_run(run_id)
    prefix = f"{folder.rstrip('/')}/" if folder else ""
    files: dict[str, dict[str, Any]] = {}
    for record in svc.list_artifacts(run_id):
        if record.name == folder:  # a file, not a folder: MLflow lists it as itself
            files[record.name.rsplit("/", 1)[-1]] = {
                "path": record.name.rsplit("/", 1)[-1],
                "is_dir": False,
                "file_size": record.size,
            }
            continue
        if not record.name.startswith(prefix):
            continue
        rest = record.name[len(prefix) :]
        if not prefix and rest.startswith(".mlflow/"):
            continue  # Shipyard's own bookkeeping of MLflow's records
        head, _, tail = rest.partition("/")
        if tail:
            files.setdefault(head, {"path": head, "is_dir": True})
        else:
            files[head] = {"path": head, "is_dir": False, "file_size": record.size}
    return {"files": [files[k] for k in sorted(files)]}


@router.get("/artifacts/{path:path}", response_model=None)
def download_artifact(path: str, request: Request) -> StreamingResponse:
    """Stream one artifact's bytes."""
    run_id, name = _locate(path)
    if not name:
        raise InvalidInputError("name a file to download; list a folder with ?path=")
    svc = _svc(request)
    return artifact_response(svc, svc.artifacts.get_artifact(run_id, name))


@router.put("/artifacts/{path:path}")
async def upload_artifact(path: str, request: Request) -> dict[str, Any]:
    """Store the body as an artifact, streamed (the run's owner or an admin)."""
    run_id, name = _locate(path)
    if not name:
        raise InvalidInputError("name the file to upload under the run's artifacts")
    await store_upload(request, run_id, name)
    return {}


@router.delete("/artifacts/{path:path}")
def delete_artifact(path: str) -> dict[str, Any]:
    """Artifacts are kept: a registered version's files must never change."""
    _locate(path)
    raise InvalidInputError("Shipyard does not delete artifacts; log a new file instead")
