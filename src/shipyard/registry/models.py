"""Registry records: registered models, versions, aliases, lifecycle states, model URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shipyard.core.errors import InvalidInputError, StateTransitionError


class VersionState(StrEnum):
    """Governance lifecycle of a version; aliases (not states) decide what gets served."""

    CANDIDATE = "candidate"
    APPROVED = "approved"
    PRODUCTION = "production"
    RETIRED = "retired"


# Forward moves of the lifecycle, plus "back to candidate" for a rejected approval.
# Retired is final: a retired version never comes back (register it again instead).
_TRANSITIONS: dict[VersionState, frozenset[VersionState]] = {
    VersionState.CANDIDATE: frozenset({VersionState.APPROVED, VersionState.RETIRED}),
    VersionState.APPROVED: frozenset(
        {VersionState.PRODUCTION, VersionState.CANDIDATE, VersionState.RETIRED}
    ),
    VersionState.PRODUCTION: frozenset({VersionState.RETIRED}),
    VersionState.RETIRED: frozenset(),
}


def parse_state(value: object) -> VersionState:
    """A lifecycle state from its name, or a clear error listing the valid ones."""
    try:
        return VersionState(str(value).lower())
    except ValueError as exc:
        raise InvalidInputError(
            f"state must be one of {', '.join(s.value for s in VersionState)}; got {value!r}"
        ) from exc


def check_transition(current: VersionState, target: VersionState) -> None:
    """Raise StateTransitionError unless ``current -> target`` is an allowed move."""
    if target not in _TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[current])) or "none"
        raise StateTransitionError(
            f"a {current.value} version cannot become {target.value} (allowed: {allowed})",
            current=current.value,
            target=target.value,
        )


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model: its versions share a purpose, a card and aliases."""

    name: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None
    # What a regulator asks of every model: its use case (credit scoring is high-risk under
    # the EU AI Act, Annex III 5(b); fraud detection is named as an exception there), owner,
    # risk tier and intended use; and how many approvals a promotion to production needs.
    use_case: str | None = None
    owner: str | None = None
    risk_tier: str | None = None
    intended_use: str | None = None
    approvals_required: int = 1


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable model package registered under a name, with its mutable metadata."""

    id: str
    name: str
    version: int
    run_id: str
    artifact_path: str
    state: VersionState
    description: str
    flavors: list[str]
    signature: dict[str, Any]
    files: dict[str, str]  # package file name -> sha256, checked on every load
    environment: dict[str, str]
    card: dict[str, Any]
    created_by: str
    created_at: int
    updated_at: int
    deleted: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        """``models:/name/version``."""
        return f"models:/{self.name}/{self.version}"

    @property
    def source_uri(self) -> str:
        """``runs:/run_id/artifact_path``: where the package files live."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


def check_alias(alias: object) -> str:
    """Aliases are identifiers (letters, digits, _ and -), not numbers, so never a version."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInputError(
            "an alias starts with a letter or _ and holds up to 64 letters, digits, _ or -; "
            f"got {alias!r}"
        )
    if alias.lower() == "latest":
        raise InvalidInputError("'latest' is reserved: it always means the newest version")
    return alias


@dataclass(frozen=True, slots=True)
class ModelUri:
    """A parsed model URI: ``models:/name/3``, ``models:/name@alias``, ``runs:/id/path``."""

    scheme: str  # "models" or "runs"
    name: str = ""
    version: int | None = None
    alias: str | None = None
    run_id: str = ""
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "runs":
            return f"runs:/{self.run_id}/{self.path}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version if self.version is not None else 'latest'}"


def parse_model_uri(uri: object) -> ModelUri:
    """Parse a model URI, with an error that shows the accepted forms."""
    forms = "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or runs:/RUN_ID/PATH"
    if not isinstance(uri, str):
        raise InvalidInputError(f"a model URI is a string ({forms}); got {uri!r}")
    if uri.startswith("runs:/"):
        rest = uri.removeprefix("runs:/").strip("/")
        run_id, _, path = rest.partition("/")
        if not run_id or not path:
            raise InvalidInputError(f"model URI {uri!r} must look like runs:/RUN_ID/PATH")
        return ModelUri("runs", run_id=run_id, path=path)
    if not uri.startswith("models:/"):
        raise InvalidInputError(f"model URI {uri!r} is not one of {forms}")
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if not name or "/" in name:
            raise InvalidInputError(f"model URI {uri!r} must look like models:/NAME@ALIAS")
        return ModelUri("models", name=name, alias=check_alias(alias))
    name, _, version = rest.partition("/")
    if not name or not version or "/" in version:
        raise InvalidInputError(f"model URI {uri!r} must look like models:/NAME/VERSION")
    if version == "latest":
        return ModelUri("models", name=name)
    if not version.isdigit() or int(version) < 1:
        raise InvalidInputError(
            f"model version must be a positive integer or 'latest'; got {version!r}"
        )
    return ModelUri("models", name=name, version=int(version))


#: Use cases with a known regulatory reading; others are accepted as free text.
KNOWN_USE_CASES = {
    "credit_scoring": "high-risk under the EU AI Act (Annex III 5(b)): creditworthiness",
    "fraud_detection": "named as an exception to Annex III 5(b) of the EU AI Act",
    "insurance_pricing": "high-risk under the EU AI Act (Annex III 5(c)): life and health",
    "aml_monitoring": "anti-money-laundering transaction monitoring",
    "marketing": "customer targeting and offers",
    "other": "see intended use",
}
RISK_TIERS = ("low", "medium", "high", "critical")


#: The model tag listing the estimator families a version may be (a project spec sets it).
ALLOWED_ESTIMATORS_TAG = "shipyard.allowed_estimators"


def estimator_families(flavor: str, conf: dict[str, Any]) -> set[str]:
    """What a version is, for an allowed-estimators rule: its flavour, the library and the
    class (``logistic_regression``, ``lgbm_classifier``, ...), and a pipeline's final step."""
    found = {flavor}
    for key in ("model_class", "final_estimator"):
        value = str(conf.get(key) or "")
        if not value:
            continue
        module, _, cls = value.rpartition(".")
        found.add(module.split(".")[0])
        found.add(re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower())
    return {f for f in found if f}


def allowed_estimator(families: set[str], allowed: list[str]) -> bool:
    """Whether a version of these families passes ``allowed`` (a family, or the start of a
    class name: ``random_forest`` allows ``random_forest_classifier``)."""
    return any(a in families or any(f.startswith(a + "_") for f in families) for a in allowed)
