"""The port the registry needs from a metadata store (SQL in-process, or a server)."""

from __future__ import annotations

from typing import Any, Protocol

from shipyard.registry.models import ModelVersion, RegisteredModel, VersionState


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
