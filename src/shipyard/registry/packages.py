"""Model packages as run artifacts: write one, list and fetch its files, load it verified.

Both registries (the local service and the REST adapter) keep packages this way, through
the tracking service they are given, so the same hashing, confinement and verified
downloads protect a model on every backend.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.paths import check_artifact_name, confined
from shipyard.registry.models import (
    ModelUri,
    ModelVersion,
    RegisteredModel,
    parse_model_uri,
)
from shipyard.registry.package import MLMODEL, LoadedModel, PackageInfo, load_package, save_package
from shipyard.registry.signature import Signature
from shipyard.tracking.service import TrackingService


class VersionReader(Protocol):
    """What resolving a ``models:/`` URI reads."""

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its aliases."""
        ...

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """A live version."""
        ...


def resolve_uri(registry: VersionReader, uri: str | ModelUri) -> ModelVersion:
    """The version a ``models:/`` URI names (alias, number or latest)."""
    parsed = parse_model_uri(uri) if isinstance(uri, str) else uri
    if parsed.scheme != "models":
        raise InvalidInputError(f"{uri} names a run artifact, not a registered version")
    if parsed.alias is not None:
        model = registry.get_model(parsed.name)
        if parsed.alias not in model.aliases:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise NotFoundError(
                f"model {parsed.name!r} has no alias {parsed.alias!r} (aliases: {known})",
                model=parsed.name,
                alias=parsed.alias,
            )
        return registry.get_version(parsed.name, model.aliases[parsed.alias])
    if parsed.version is None:
        model = registry.get_model(parsed.name)
        if model.latest_version is None:
            raise NotFoundError(f"model {parsed.name!r} has no versions", model=parsed.name)
        return registry.get_version(parsed.name, model.latest_version)
    return registry.get_version(parsed.name, parsed.version)


class ModelPackages:
    """Packages kept as artifacts of their training runs."""

    def __init__(self, tracking: TrackingService) -> None:
        self.tracking = tracking

    def files(self, run_id: str, path: str) -> dict[str, str]:
        """The package's files (name within the package -> sha256) as the run stores them."""
        prefix = path.rstrip("/") + "/"
        files = {
            r.name.removeprefix(prefix): r.digest
            for r in self.tracking.list_artifacts(run_id)
            if r.name.startswith(prefix)
        }
        if MLMODEL not in files:
            raise NotFoundError(
                f"runs:/{run_id}/{path} is not a model package (no {path}/MLmodel); log it "
                "with shipyard.log_model or register a model object",
                run_id=run_id,
                path=path,
            )
        return files

    def download(self, run_id: str, path: str, files: Mapping[str, str], dest: Path) -> None:
        """Fetch the package's files into ``dest`` (verified by the tracking service)."""
        for name in files:
            # Names come from a listing (a server's answer): never let one leave ``dest``.
            target = confined(dest, check_artifact_name(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            self.tracking.download_artifact(run_id, f"{path}/{name}", target)

    def load(
        self,
        uri: str,
        resolve: Callable[[ModelUri], ModelVersion],
        *,
        trusted: bool = False,
    ) -> tuple[LoadedModel, ModelVersion | None]:
        """Load the model a URI names, verifying every file against its recorded hash."""
        parsed = parse_model_uri(uri)
        if parsed.scheme == "runs":
            self.tracking.get_run(parsed.run_id)
            files = self.files(parsed.run_id, parsed.path)
            version, run_id, path = None, parsed.run_id, parsed.path
        else:
            version = resolve(parsed)
            run_id, path = version.run_id, version.artifact_path
            files = self.files(run_id, path)
            changed = sorted(n for n, d in version.files.items() if files.get(n) != d)
            if changed:
                raise NotFoundError(
                    f"the stored files of {version.uri} changed since registration "
                    f"({', '.join(changed)}); refusing to load",
                    model=version.name,
                    version=version.version,
                )
        folder = Path(tempfile.mkdtemp(prefix="shipyard-load-"))
        try:
            self.download(run_id, path, files, folder)
            expected = version.files if version is not None else files
            return load_package(folder, trusted=trusted, expected_files=expected), version
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class PackageOperations:
    """The registry operations that are package work on either backend: ``log_model``,
    ``resolve`` and ``load``. A registry mixes these in beside its own ``packages``,
    ``get_model`` and ``get_version``."""

    packages: ModelPackages

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its aliases (the registry's own)."""
        raise NotImplementedError

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """A live version (the registry's own)."""
        raise NotImplementedError

    def log_model(
        self,
        run_id: str,
        model: Any,
        *,
        artifact_path: str = "model",
        input_example: Any,
        signature: Signature | None = None,
        convert_onnx: bool = True,
    ) -> PackageInfo:
        """Write ``model`` as a package under ``artifact_path`` of the run."""
        path = check_artifact_name(artifact_path).rstrip("/")
        self.packages.tracking.get_run(run_id)
        folder = Path(tempfile.mkdtemp(prefix="shipyard-model-"))
        try:
            info = save_package(
                model,
                folder,
                input_example=input_example,
                run_id=run_id,
                artifact_path=path,
                signature=signature,
                convert_onnx=convert_onnx,
            )
            for name in info.files:
                self.packages.tracking.log_artifact(run_id, folder / name, f"{path}/{name}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return info

    def resolve(self, uri: str | ModelUri) -> ModelVersion:
        """The version a ``models:/`` URI names (alias, number or latest)."""
        return resolve_uri(self, uri)

    def load(self, uri: str, *, trusted: bool = False) -> tuple[LoadedModel, ModelVersion | None]:
        """Load the model a URI names, verifying every file against its recorded hash."""
        return self.packages.load(uri, self.resolve, trusted=trusted)
