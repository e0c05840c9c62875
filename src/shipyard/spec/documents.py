"""The documents of a project spec: Kubernetes-style ``apiVersion/kind/metadata/spec``.

```yaml
apiVersion: shipyard.dev/v1
kind: Model
metadata: {name: fraud}
spec: {owner: risk-team, use_case: fraud_detection, risk_tier: high, approvals_required: 2,
       allowed_estimators: [lightgbm, xgboost, logistic_regression]}
---
apiVersion: shipyard.dev/v1
kind: Notifier
metadata: {name: ops}
spec: {type: webhook, url: "${OPS_WEBHOOK}", format: slack}
```

Each kind's body is a Pydantic model; their JSON Schemas are published by
``shipyard spec schema`` so editors complete and check the file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shipyard.gates.policy import GatePolicy
from shipyard.monitoring.alerts import AlertRule
from shipyard.monitoring.spec import MonitorSettings, NotifierSpec
from shipyard.registry.models import RISK_TIERS

API_VERSION = "shipyard.dev/v1"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExperimentBody(_Body):
    """An experiment; its tags are set when it is created."""

    tags: dict[str, str] = Field(default_factory=dict)


class ModelBody(_Body):
    """A registered model's governance: what a regulator asks of it, and what may be used."""

    description: str = Field(default="", max_length=5000)
    owner: str | None = Field(default=None, max_length=250)
    use_case: str | None = Field(default=None, max_length=250)
    risk_tier: str | None = None
    intended_use: str | None = Field(default=None, max_length=5000)
    approvals_required: int = Field(default=1, ge=1, le=10)
    #: Estimator families a version may be (``lightgbm``, ``xgboost``, ``sklearn``...);
    #: empty allows any.
    allowed_estimators: list[str] = Field(default_factory=list)
    #: Aliases pinned to versions (``{champion: 3}``), so one moved by hand is drift; left
    #: out, aliases are not managed. ``champion`` moves through approvals, never by apply.
    aliases: dict[str, int] | None = None

    @field_validator("risk_tier")
    @classmethod
    def _tier(cls, value: str | None) -> str | None:
        if value is not None and value not in RISK_TIERS:
            raise ValueError(f"risk_tier must be one of {', '.join(RISK_TIERS)}")
        return value

    @field_validator("allowed_estimators")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        return sorted({v.strip().lower() for v in value if v.strip()})


class PipelineBody(_Body):
    """A pipeline on a schedule: the entry point, its cron and parameters, the executor."""

    entry: str = Field(pattern=r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_]*$")  # module:pipeline
    schedule: str
    timezone: str = "UTC"
    params: dict[str, Any] = Field(default_factory=dict)
    executor: Literal["local", "processes", "ray"] = "local"
    enabled: bool = True

    @model_validator(mode="after")
    def _cron(self) -> PipelineBody:
        from shipyard.core.errors import InvalidInputError
        from shipyard.pipelines.schedules import check_cron

        try:
            check_cron(self.schedule, self.timezone)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        return self


class GatePolicyBody(GatePolicy):
    """A gate policy, as ``gates.yaml`` has it, and the models it applies to."""

    models: list[str] = Field(default_factory=list)


class DeploymentBody(_Body):
    """How a model is served: the alias, canary and shadows, workers, threshold."""

    model: str = Field(pattern=r"^models:/")
    canary: str | None = Field(default=None, pattern=r"^models:/")
    canary_percent: int = Field(default=0, ge=0, le=100)
    shadows: list[str] = Field(default_factory=list)
    workers: int = Field(default=1, ge=1, le=64)
    threshold: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _canary(self) -> DeploymentBody:
        if self.canary_percent and self.canary is None:
            raise ValueError("canary_percent needs a canary model")
        return self


class MonitorBody(MonitorSettings):
    """A monitor; its alert rules and notifiers are their own documents."""


class AlertRuleBody(AlertRule):
    """An alert rule of one monitor (``monitor``); its ``name`` is the document's."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(default="rule", pattern=NAME)  # taken from metadata.name
    monitor: str = Field(pattern=NAME)


class NotifierBody(NotifierSpec):
    """Where alerts go; secrets only as ``${ENV_VAR}`` references."""


class RoleBindingBody(_Body):
    """A user's role on this installation (the document's name is the user's)."""

    role: Literal["viewer", "member", "approver", "admin"]


#: Every kind, in the order apply creates them (what others refer to comes first).
KINDS: dict[str, type[BaseModel]] = {
    "RoleBinding": RoleBindingBody,
    "Experiment": ExperimentBody,
    "Model": ModelBody,
    "GatePolicy": GatePolicyBody,
    "Pipeline": PipelineBody,
    "Deployment": DeploymentBody,
    "Notifier": NotifierBody,
    "Monitor": MonitorBody,
    "AlertRule": AlertRuleBody,
}


class Metadata(BaseModel):
    """A document's name, and labels for people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    labels: dict[str, str] = Field(default_factory=dict)


class Document(BaseModel):
    """One object of the spec, checked: its kind, name and body (the kind's model)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    body: dict[str, Any]  # the kind's model, dumped in JSON mode with its defaults
    line: int = 0  # where it starts in the file (1-based), for messages

    @property
    def key(self) -> tuple[str, str]:
        """(kind, name): what identifies the object."""
        return (self.kind, self.name)


def body_of(kind: str, name: str, data: object) -> dict[str, Any]:
    """A kind's body checked and filled with its defaults (pydantic ValidationError if not)."""
    model = KINDS[kind]
    if kind == "AlertRule" and isinstance(data, dict):
        data = {**data, "name": name}
    checked = model.model_validate(data)
    dumped = checked.model_dump(mode="json", by_alias=True)
    if kind == "AlertRule":
        dumped.pop("name", None)
    if kind == "Monitor":
        dumped.get("health", {}).pop("metrics_url", None)
    return dumped


def document_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one spec document, any kind."""
    variants = []
    defs: dict[str, Any] = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[f"{kind}Spec"] = schema
        variants.append(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["apiVersion", "kind", "metadata", "spec"],
                "properties": {
                    "apiVersion": {"const": API_VERSION},
                    "kind": {"const": kind},
                    "metadata": {"$ref": "#/$defs/Metadata"},
                    "spec": {"$ref": f"#/$defs/{kind}Spec"},
                },
            }
        )
    meta = Metadata.model_json_schema()
    defs["Metadata"] = meta
    environment = {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": "Environment"},
            "metadata": {"$ref": "#/$defs/Metadata"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "patches": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["kind", "name"],
                            "properties": {
                                "kind": {"enum": list(KINDS)},
                                "name": {"type": "string"},
                                "spec": {"type": "object"},
                                "delete": {"type": "boolean"},
                            },
                        },
                    }
                },
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://shipyard.dev/schemas/v1/shipyard.schema.json",
        "title": "Shipyard project spec document",
        "oneOf": [*variants, environment],
        "$defs": defs,
    }


def compose_monitor(name: str, live: dict[tuple[str, str], dict[str, Any]]) -> Any:
    """The MonitorSpec of declared monitor ``name``: its settings, the alert rules that
    name it and the notifiers they use (``${VAR}`` references resolved where they send)."""
    from shipyard.core.errors import NotFoundError
    from shipyard.monitoring.spec import parse_monitor

    settings = live.get(("Monitor", name))
    if settings is None:
        raise NotFoundError(f"no declared monitor {name!r} (shipyard apply declares them)")
    rules = [
        {"name": rule, **{k: v for k, v in body.items() if k != "monitor"}}
        for (kind, rule), body in sorted(live.items())
        if kind == "AlertRule" and body.get("monitor") == name
    ]
    wanted = {n for r in rules for n in r.get("notify", [])}
    notifiers = {n: live[("Notifier", n)] for n in sorted(wanted) if ("Notifier", n) in live}
    return parse_monitor(
        {"kind": "Monitor", "name": name, **settings, "alerts": rules, "notifiers": notifiers}
    )
