"""RegistryService: register, describe, alias, transition and load model versions.

A version's files live as artifacts of its source run (``runs:/RUN/model``), so the same
hashing, confinement and verified downloads protect them on every backend; the version
record keeps each file's sha256 and loading refuses any file that no longer matches.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.core.actor import break_glass, require_role
from shipyard.core.audit import NULL_AUDIT, AuditLog
from shipyard.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StateTransitionError,
)
from shipyard.core.jsonsafe import INT64_MAX
from shipyard.core.names import check_key, check_name, check_text
from shipyard.core.roles import Role
from shipyard.registry import card as cards
from shipyard.registry.guard import check_run_change
from shipyard.registry.models import (
    ALLOWED_ESTIMATORS_TAG,
    RISK_TIERS,
    ModelVersion,
    RegisteredModel,
    VersionState,
    allowed_estimator,
    check_alias,
    check_transition,
    estimator_families,
    parse_state,
)
from shipyard.registry.package import check_package, read_mlmodel
from shipyard.registry.packages import ModelPackages, PackageOperations
from shipyard.registry.ports import RegistryStore
from shipyard.tracking.service import TrackingService

#: The alias serving follows; it moves through approvals and rollback.
CHAMPION = "champion"

logger = logging.getLogger(__name__)

MAX_DESCRIPTION = 20_000


def check_version(version: object) -> int:
    """A version number: a positive integer (``"3"`` accepted)."""
    if isinstance(version, str) and version.isascii() and version.isdigit() and len(version) < 20:
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= INT64_MAX:
        raise InvalidInputError(
            f"a model version is a positive 64-bit integer; got {str(version)[:40]!r}"
        )
    return version


class RegistryService(PackageOperations):
    """The model registry's rules over a RegistryStore and the run artifacts."""

    def __init__(
        self, store: RegistryStore, tracking: TrackingService, audit: AuditLog | None = None
    ) -> None:
        self.store = store
        self.tracking = tracking
        self.packages = ModelPackages(tracking)
        self.audit: AuditLog = audit or NULL_AUDIT

    # packages -----------------------------------------------------------------------------

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
        name = check_name(name, "model name")
        text = check_text(description or "", "description", MAX_DESCRIPTION)
        tag_values = {check_key(k, "tag key"): str(v) for k, v in (tags or {}).items()}
        run = self.tracking.get_run(run_id)
        files = self.packages.files(run_id, artifact_path)
        with tempfile.TemporaryDirectory(prefix="shipyard-mlmodel-") as tmp:
            # The whole package, so what loading will build is checked before anyone can.
            self.packages.download(run_id, artifact_path, files, Path(tmp))
            mlmodel = read_mlmodel(Path(tmp))
            requirements = ""
            if "requirements.txt" in files:
                requirements = (Path(tmp) / "requirements.txt").read_text()
            kind, checked = check_package(Path(tmp), mlmodel)
        flavors = [f for f in mlmodel["flavors"] if f != "python_function"]
        native = mlmodel["flavors"].get(kind, {})
        self._check_allowed(name, kind, native)
        signature = mlmodel.get("signature") or {}
        lineage = {
            "training_run": run_id,
            "experiment": run.experiment_id,
            "pipeline_run": run.tags.get("shipyard.pipeline_run"),
            "pipeline": run.tags.get("shipyard.pipeline"),
            "source_commit": run.source.git_commit if run.source else None,
        }
        with self.audit.atomic():
            version = self.store.create_version(
                name,
                {
                    "run_id": run_id,
                    "artifact_path": artifact_path,
                    "description": text,
                    "tags": tag_values,
                    "created_by": created_by,
                    "flavors": flavors,
                    "signature": signature,
                    "files": files,
                    "environment": _environment_of(mlmodel, requirements),
                    "card": {},
                },
            )
            card = cards.new_card(
                name=name,
                version=version.version,
                description=text,
                flavor=kind,
                model_class=str(native.get("model_class", kind)),
                signature=signature,
                metrics=run.metrics,
                lineage={k: v for k, v in lineage.items() if v},
                data_profile=data_profile,
                onnx=(mlmodel["flavors"].get("onnx") or {}).get("parity"),
                search=self._run_report(run_id, cards.SEARCH_REPORT),
                federated=self._run_report(run_id, cards.FEDERATED_REPORT),
            )
            registered = self.store.update_version(name, version.version, {"card": card})
            self.audit.record(
                "model.registered",
                registered.uri,
                {
                    "source": registered.source_uri,
                    "files": registered.files,
                    "created_by": created_by,
                    **checked,
                },
            )
            return registered

    def _run_report(self, run_id: str, name: str) -> dict[str, Any] | None:
        """A report the training run keeps for the card (AutoML search, federated job)."""
        if not any(a.name == name for a in self.tracking.list_artifacts(run_id)):
            return None
        try:
            report = json.loads(self.tracking.read_artifact_bytes(run_id, name))
        except ValueError as exc:
            raise InvalidInputError(
                f"run {run_id}'s {name} is not JSON: {exc}", run_id=run_id
            ) from exc
        if not isinstance(report, dict):
            raise InvalidInputError(f"run {run_id}'s {name} is not an object")
        return report

    def _check_allowed(self, name: str, flavor: str, conf: dict[str, Any]) -> None:
        """Refuse a version whose estimator the model's governance does not allow."""
        try:
            listed = self.store.get_model(name).tags.get(ALLOWED_ESTIMATORS_TAG, "")
        except NotFoundError:
            return
        allowed = [a for a in listed.split(",") if a]
        families = estimator_families(flavor, conf)
        if allowed and not allowed_estimator(families, allowed):
            raise PermissionDeniedError(
                f"model {name!r} allows only {', '.join(allowed)}; this version is "
                f"{', '.join(sorted(families))}"
            )

    def guard_run_change(self, run_id: str, change: str, artifact: str | None = None) -> None:
        """Refuse changes to a run that would break a registered version built from it.

        Raises:
            ConflictError: a live version depends on what the change would touch.
        """
        check_run_change(self.store, run_id, change, artifact)

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags and aliases."""
        return self.store.get_model(check_name(name, "model name"))

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        return self.store.list_models()

    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Versions of a model, newest first."""
        return self.store.list_versions(check_name(name, "model name"), include_deleted)

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """A live version; deleted ones are NotFound with a message that says so."""
        mv = self.store.get_version(check_name(name, "model name"), check_version(version))
        if mv.deleted:
            raise NotFoundError(
                f"version {mv.version} of model {name!r} was deleted",
                model=name,
                version=mv.version,
            )
        return mv

    # changes ------------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at a live version (moving it from any other); ``reason`` is audited.

        Needs an approver. ``champion`` is what serving follows: it moves through approvals
        and rollback, and by hand only as an admin's break-glass with a reason.
        """
        alias = check_alias(alias)
        require_role(Role.APPROVER, f"moving alias {alias!r}")
        with self.audit.atomic():
            if alias == CHAMPION:
                reason = break_glass(reason, f"moving {CHAMPION} by hand")
                self.audit.record(
                    "alias.break_glass",
                    f"models:/{name}@{alias}",
                    {"version": str(version), "reason": reason},
                )
            return self.governed_alias(name, alias, version, reason=reason)

    def governed_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion:
        """Move an alias with no role check: the approval and rollback flows' own path,
        taken after they have checked their rules (approvals, gate reports, roles)."""
        alias = check_alias(alias)
        mv = self.get_version(name, version)
        before = self.get_model(mv.name).aliases.get(alias)
        with self.audit.atomic():
            self.store.set_alias(mv.name, alias, mv.version)
            payload: dict[str, Any] = {"version": mv.version, "previous": before}
            if reason:
                payload["reason"] = check_text(reason, "reason", 2000)
            self.audit.record("alias.set", f"models:/{mv.name}@{alias}", payload)
        return self.get_version(mv.name, mv.version)

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        """Remove an alias (an approver's; ``champion``: an admin's break-glass)."""
        alias = check_alias(alias)
        require_role(Role.APPROVER, f"removing alias {alias!r}")
        with self.audit.atomic():
            if alias == CHAMPION:
                reason = break_glass(reason or "removal", f"removing {CHAMPION}")
                self.audit.record(
                    "alias.break_glass",
                    f"models:/{name}@{alias}",
                    {"version": None, "reason": reason},
                )
            before = self.get_model(name).aliases.get(alias)
            self.store.set_alias(check_name(name, "model name"), alias, None)
            self.audit.record("alias.deleted", f"models:/{name}@{alias}", {"previous": before})

    def transition(
        self,
        name: str,
        version: int | str,
        state: str | VersionState,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version along its lifecycle (compare-and-set against concurrent moves).

        Needs an approver. Production is reached through approvals; moving a version there
        by hand is an admin's break-glass with a reason, audited as such.
        """
        mv = self.get_version(name, version)
        target = parse_state(state)
        require_role(Role.APPROVER, f"setting state {target.value}")
        check_transition(mv.state, target)
        with self.audit.atomic():
            if target is VersionState.PRODUCTION:
                reason = break_glass(reason, f"moving {mv.uri} to production by hand")
                self.audit.record(
                    "version.break_glass", mv.uri, {"to": target.value, "reason": reason}
                )
            return self._move(mv, target)

    def governed_transition(
        self, name: str, version: int | str, state: str | VersionState
    ) -> ModelVersion:
        """Move a version with no role check: the approval and rollback flows' own path."""
        mv = self.get_version(name, version)
        target = parse_state(state)
        check_transition(mv.state, target)
        return self._move(mv, target)

    def _move(self, mv: ModelVersion, target: VersionState) -> ModelVersion:
        with self.audit.atomic():
            moved = self.store.update_version(
                mv.name, mv.version, {"state": target.value}, expected_state=mv.state
            )
            self.audit.record(
                "version.transitioned", mv.uri, {"from": mv.state.value, "to": target.value}
            )
            return moved

    def restore(self, name: str, version: int | str) -> ModelVersion:
        """Bring a retired version back to production: only a rollback does this."""
        mv = self.get_version(name, version)
        if mv.state is not VersionState.RETIRED:
            raise StateTransitionError(
                f"only a retired version can be restored; {mv.uri} is {mv.state.value}",
                model=mv.name,
                version=mv.version,
            )
        return self._move(mv, VersionState.PRODUCTION)

    def update(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description."""
        mv = self.get_version(name, version)
        text = check_text(description or "", "description", MAX_DESCRIPTION)
        return self.store.update_version(mv.name, mv.version, {"description": text})

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model (registering a version creates one too).

        Raises:
            ConflictError: a model of that name exists.
        """
        name = check_name(name, "model name")
        text = check_text(description or "", "description", MAX_DESCRIPTION)
        tag_values = {check_key(k, "tag key"): str(v) for k, v in (tags or {}).items()}
        with self.audit.atomic():
            model = self.store.create_model(name, text, tag_values)
            self.audit.record("model.created", f"models:/{name}", {"tags": tag_values})
        return model

    def update_model(self, name: str, description: str) -> RegisteredModel:
        """Change a model's description."""
        self.get_model(name)
        text = check_text(description, "description", MAX_DESCRIPTION)
        with self.audit.atomic():
            model = self.store.update_model(name, {"description": text})
            self.audit.record("model.updated", f"models:/{name}", {"description": text})
        return model

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
        """Record the fields regulators ask for; None leaves a field as it is."""
        self.get_model(name)
        changes: dict[str, Any] = {}
        if use_case is not None:
            changes["use_case"] = check_key(use_case, "use case")
        if owner is not None:
            changes["owner"] = check_text(owner, "owner", 250)
        if risk_tier is not None:
            if risk_tier not in RISK_TIERS:
                raise InvalidInputError(
                    f"risk tier must be one of {', '.join(RISK_TIERS)}; got {risk_tier!r}"
                )
            changes["risk_tier"] = risk_tier
        if intended_use is not None:
            changes["intended_use"] = check_text(intended_use, "intended use", MAX_DESCRIPTION)
        if approvals_required is not None:
            if not 1 <= approvals_required <= 10:
                raise InvalidInputError("approvals required must be between 1 and 10")
            changes["approvals_required"] = approvals_required
        if not changes:
            raise InvalidInputError("nothing to change: give at least one field")
        with self.audit.atomic():
            model = self.store.update_model(name, changes)
            self.audit.record("model.governance_set", f"models:/{name}", changes)
        return model

    def set_tag(self, name: str, version: int | str | None, key: str, value: object) -> None:
        """Tag a version (or the model when ``version`` is None); ``value=None`` removes."""
        key = check_key(key, "tag key")
        text = None if value is None else str(value)
        if version is None:
            self.get_model(name)
            self.store.set_model_tag(name, key, text)
        else:
            mv = self.get_version(name, version)
            self.store.set_version_tag(mv.name, mv.version, key, text)

    def edit_card(self, name: str, version: int | str, changes: Mapping[str, Any]) -> ModelVersion:
        """Edit the people-written parts of a version's model card."""
        mv = self.get_version(name, version)
        card = cards.edit_card(mv.card, changes)
        with self.audit.atomic():
            edited = self.store.update_version(mv.name, mv.version, {"card": card})
            self.audit.record("card.edited", mv.uri, {"fields": sorted(changes)})
        return edited

    def delete_version(self, name: str, version: int | str, *, force: bool = False) -> None:
        """Delete a version; one in production or holding an alias needs ``force``."""
        mv = self.get_version(name, version)
        if not force and (mv.state is VersionState.PRODUCTION or mv.aliases):
            held = f"aliases {', '.join(mv.aliases)}" if mv.aliases else "production state"
            raise ConflictError(
                f"version {mv.version} of {name!r} holds {held}; move them first or force",
                model=name,
                version=mv.version,
            )
        with self.audit.atomic():
            self.store.delete_version(mv.name, mv.version)
            self.audit.record("version.deleted", mv.uri, {"force": force, "aliases": mv.aliases})


def _environment_of(mlmodel: Mapping[str, Any], requirements: str) -> dict[str, str]:
    """Python and the pinned packages of the package (from its requirements.txt)."""
    env: dict[str, str] = {}
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function") or {}
    if pyfunc.get("python_version"):
        env["python"] = str(pyfunc["python_version"])
    for line in requirements.splitlines():
        dist, sep, version = line.strip().partition("==")
        if sep and dist:
            env[dist] = version
    return env
