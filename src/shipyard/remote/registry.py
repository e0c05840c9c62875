"""RestRegistry: the ModelRegistry operations against a Shipyard server.

Metadata calls go to ``/api/v1/models`` where the server's RegistryService applies every
rule; packages are written and read as run artifacts over the tracking routes by the same
ModelPackages the local service uses, so ``log_model``, ``resolve`` and ``load`` (with its
hash checks) are one piece of code on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.registry.models import (
    ModelVersion,
    RegisteredModel,
    VersionState,
    check_alias,
    parse_state,
)
from shipyard.registry.packages import ModelPackages, PackageOperations
from shipyard.registry.service import check_version
from shipyard.remote.client import RestClient, json_body, seg
from shipyard.tracking.service import TrackingService
from shipyard.wire.schemas import (
    AliasTarget,
    CardEdit,
    GovernanceUpdate,
    ModelCreate,
    ModelList,
    ModelRead,
    ModelUpdate,
    TagValue,
    VersionCreate,
    VersionList,
    VersionRead,
    VersionUpdate,
)


class RestRegistry(PackageOperations):
    """ModelRegistry over HTTP: the server's registry decides, packages travel as artifacts."""

    def __init__(self, client: RestClient, tracking: TrackingService) -> None:
        self.client = client
        self.tracking = tracking
        self.packages = ModelPackages(tracking)

    def guard_run_change(self, run_id: str, change: str, artifact: str | None = None) -> None:
        """Nothing to check on a client: the server guards its runs on every write."""

    def _model(self, name: str) -> str:
        return f"/api/v1/models/{seg(name)}"

    def _version(self, name: str, version: int | str) -> str:
        return f"{self._model(name)}/versions/{check_version(version)}"

    def register(
        self,
        name: str,
        *,
        run_id: str,
        artifact_path: str = "model",
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        created_by: str = "local",
        data_profile: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """POST /api/v1/models/{name}/versions."""
        body = VersionCreate(
            run_id=run_id,
            artifact_path=artifact_path,
            description=description,
            tags={str(k): str(v) for k, v in (tags or {}).items()},
            created_by=created_by,
            data_profile=dict(data_profile) if data_profile is not None else None,
        )
        data = self.client.json(
            "POST", f"{self._model(name)}/versions", idempotent=False, **json_body(body)
        )
        return VersionRead.model_validate(data).domain()

    def get_model(self, name: str) -> RegisteredModel:
        """GET /api/v1/models/{name}."""
        return ModelRead.model_validate(self.client.json("GET", self._model(name))).domain()

    def list_models(self) -> list[RegisteredModel]:
        """GET /api/v1/models."""
        data = self.client.json("GET", "/api/v1/models")
        return [m.domain() for m in ModelList.model_validate(data).models]

    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """GET /api/v1/models/{name}/versions."""
        data = self.client.json(
            "GET",
            f"{self._model(name)}/versions",
            params={"include_deleted": str(include_deleted).lower()},
        )
        return [v.domain() for v in VersionList.model_validate(data).versions]

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """GET /api/v1/models/{name}/versions/{version}."""
        data = self.client.json("GET", self._version(name, version))
        return VersionRead.model_validate(data).domain()

    def set_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion:
        """PUT /api/v1/models/{name}/aliases/{alias}."""
        body = AliasTarget(version=check_version(version), reason=reason)
        data = self.client.json(
            "PUT", f"{self._model(name)}/aliases/{seg(check_alias(alias))}", **json_body(body)
        )
        return VersionRead.model_validate(data).domain()

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        """DELETE /api/v1/models/{name}/aliases/{alias}."""
        self.client.request(
            "DELETE",
            f"{self._model(name)}/aliases/{seg(check_alias(alias))}",
            params={"reason": reason} if reason else None,
        )

    def transition(
        self,
        name: str,
        version: int | str,
        state: str | VersionState,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """PATCH /api/v1/models/{name}/versions/{version} with the target state."""
        body = VersionUpdate(state=parse_state(state), reason=reason)
        data = self.client.json(
            "PATCH", self._version(name, version), idempotent=False, **json_body(body)
        )
        return VersionRead.model_validate(data).domain()

    def update(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion:
        """PATCH /api/v1/models/{name}/versions/{version} with a description."""
        body = VersionUpdate(description=description or "")
        data = self.client.json("PATCH", self._version(name, version), **json_body(body))
        return VersionRead.model_validate(data).domain()

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> RegisteredModel:
        """POST /api/v1/models."""
        body = ModelCreate(
            name=name,
            description=description or "",
            tags={k: str(v) for k, v in (tags or {}).items()},
        )
        data = self.client.json("POST", "/api/v1/models", **json_body(body))
        return ModelRead.model_validate(data).domain()

    def update_model(self, name: str, description: str) -> RegisteredModel:
        """PATCH /api/v1/models/{name}."""
        data = self.client.json(
            "PATCH", self._model(name), **json_body(ModelUpdate(description=description))
        )
        return ModelRead.model_validate(data).domain()

    def set_tag(self, name: str, version: int | str | None, key: str, value: object) -> None:
        """PUT or DELETE .../tags/{key} on the model or one of its versions."""
        base = self._model(name) if version is None else self._version(name, version)
        path = f"{base}/tags/{seg(key)}"
        if value is None:
            self.client.request("DELETE", path)
        else:
            self.client.request("PUT", path, **json_body(TagValue(value=str(value))))

    def edit_card(self, name: str, version: int | str, changes: Mapping[str, Any]) -> ModelVersion:
        """PATCH /api/v1/models/{name}/versions/{version}/card."""
        body = CardEdit(changes=dict(changes))
        data = self.client.json("PATCH", f"{self._version(name, version)}/card", **json_body(body))
        return VersionRead.model_validate(data).domain()

    def delete_version(self, name: str, version: int | str, *, force: bool = False) -> None:
        """DELETE /api/v1/models/{name}/versions/{version}."""
        self.client.request(
            "DELETE", self._version(name, version), params={"force": str(force).lower()}
        )

    def set_governance(
        self,
        name: str,
        *,
        use_case: str | None = None,
        owner: str | None = None,
        risk_tier: str | None = None,
        intended_use: str | None = None,
        approvals_required: int | None = None,
    ) -> RegisteredModel:
        """PUT /api/v1/models/{name}/governance (admin)."""
        body = GovernanceUpdate(
            use_case=use_case,
            owner=owner,
            risk_tier=risk_tier,
            intended_use=intended_use,
            approvals_required=approvals_required,
        )
        data = self.client.json("PUT", f"{self._model(name)}/governance", **json_body(body))
        return ModelRead.model_validate(data).domain()

    def governed_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion:
        """Approvals and rollback move aliases on the server, never from a client."""
        raise InvalidInputError("approvals and rollback run on the server: use shipyard models")

    def governed_transition(
        self, name: str, version: int | str, state: str | VersionState
    ) -> ModelVersion:
        """Approvals and rollback move states on the server, never from a client."""
        raise InvalidInputError("approvals and rollback run on the server: use shipyard models")

    def restore(self, name: str, version: int | str) -> ModelVersion:
        """Restoring happens on the server, inside a rollback."""
        raise InvalidInputError("use shipyard models rollback: the server restores versions")
