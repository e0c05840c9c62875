"""The registry's ports: what it needs from a metadata store (RegistryStore), and what
surfaces and other capabilities ask of it (ModelRegistry), in this process or through a
server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.registry.models import ModelUri, ModelVersion, RegisteredModel, VersionState

if TYPE_CHECKING:
    from shipyard.registry.package import LoadedModel, PackageInfo
    from shipyard.registry.signature import Signature
    from shipyard.tracking.service import TrackingService


class RegistryStore(Protocol):
    """Registered models, their versions, tags and aliases."""

    def create_model(self, name: str, description: str, tags: dict[str, str]) -> RegisteredModel:
        """Create a model; ConflictError if the name is taken."""
        ...

    def get_model(self, name: str) -> RegisteredModel:
        """A model by name, with its tags and aliases; NotFoundError if unknown."""
        ...

    def list_models(self) -> list[RegisteredModel]:
        """Every model by name."""
        ...

    def update_model(self, name: str, changes: dict[str, Any]) -> RegisteredModel:
        """Change a model's description or governance fields (``GOVERNANCE_FIELDS``)."""
        ...

    def set_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set a model tag, or delete it when ``value`` is None."""
        ...

    def create_version(self, name: str, fields: dict[str, Any]) -> ModelVersion:
        """Add the next version of ``name`` (creating the model if needed), atomically."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersion:
        """A version (deleted ones too, flagged); NotFoundError if it never existed."""
        ...

    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Versions of a model, newest first."""
        ...

    def update_version(
        self,
        name: str,
        version: int,
        changes: dict[str, Any],
        expected_state: VersionState | None = None,
    ) -> ModelVersion:
        """Change description, card or state; ``expected_state`` makes it compare-and-set."""
        ...

    def set_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        """Set a version tag, or delete it when ``value`` is None."""
        ...

    def set_alias(self, name: str, alias: str, version: int | None) -> None:
        """Point ``alias`` at ``version`` (moving it), or delete it when ``version`` is None."""
        ...

    def delete_version(self, name: str, version: int) -> None:
        """Mark a version deleted and drop the aliases that pointed to it, atomically."""
        ...

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """Live versions whose package is an artifact of ``run_id``."""
        ...


class ModelRegistry(Protocol):
    """The model registry's operations. The local service applies every rule (roles,
    break-glass, audit); the REST adapter asks the server, which applies the same ones."""

    #: The tracking service whose run artifacts hold the packages.
    tracking: TrackingService

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
        ...

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
        """Register the package at ``runs:/run_id/artifact_path`` as the next version."""
        ...

    def guard_run_change(self, run_id: str, change: str, artifact: str | None = None) -> None:
        """Refuse changes to a run that would break a registered version built from it."""
        ...

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags and aliases."""
        ...

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        ...

    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Versions of a model, newest first."""
        ...

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """A live version."""
        ...

    def resolve(self, uri: str | ModelUri) -> ModelVersion:
        """The version a ``models:/`` URI names (alias, number or latest)."""
        ...

    def load(self, uri: str, *, trusted: bool = False) -> tuple[LoadedModel, ModelVersion | None]:
        """Load the model a URI names, verifying every file against its recorded hash."""
        ...

    def set_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion:
        """Point an alias at a version (an approver's; ``champion``: break-glass)."""
        ...

    def governed_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion:
        """Move an alias as the approval and rollback flows do, after their own checks."""
        ...

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        """Remove an alias."""
        ...

    def transition(
        self,
        name: str,
        version: int | str,
        state: str | VersionState,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version along its lifecycle (production by hand: break-glass)."""
        ...

    def governed_transition(
        self, name: str, version: int | str, state: str | VersionState
    ) -> ModelVersion:
        """Move a version as the approval and rollback flows do, after their own checks."""
        ...

    def restore(self, name: str, version: int | str) -> ModelVersion:
        """Bring a retired version back to production (a rollback's step)."""
        ...

    def update(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description."""
        ...

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model."""
        ...

    def update_model(self, name: str, description: str) -> RegisteredModel:
        """Change a model's description."""
        ...

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
        """Record the fields regulators ask for (an admin's)."""
        ...

    def set_tag(self, name: str, version: int | str | None, key: str, value: object) -> None:
        """Tag a version (or the model when ``version`` is None); ``value=None`` removes."""
        ...

    def edit_card(self, name: str, version: int | str, changes: Mapping[str, Any]) -> ModelVersion:
        """Edit the people-written parts of a version's model card."""
        ...

    def delete_version(self, name: str, version: int | str, *, force: bool = False) -> None:
        """Delete a version; one in production or holding an alias needs ``force``."""
        ...
