"""What a federated training job is: silos, strategy, rounds, privacy. No Flower import here,
so specs, the CLI and gates validate a job without the ``federated`` extra."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.core.errors import InvalidInputError

SILO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: Flower's central DP wrappers, by the names CONVENTIONS gives them in YAML.
DP_MODES = {
    "central-server-fixed": "DifferentialPrivacyServerSideFixedClipping",
    "central-client-fixed": "DifferentialPrivacyClientSideFixedClipping",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DPConfig(_Strict):
    """Central (silo-level) differential privacy: clip each silo's update, add Gaussian noise
    to their mean. The privacy unit is a whole silo, as Flower's central DP defines it."""

    mode: Literal["central-server-fixed", "central-client-fixed"] = "central-client-fixed"
    noise_multiplier: float = Field(gt=0, le=100)
    clipping_norm: float = Field(gt=0)
    delta: float = Field(default=1e-5, gt=0, lt=1)
    #: Above this epsilon the model is not called differentially private (and a gate's
    #: ``privacy`` check refuses it). 10 is a common ceiling for client-level DP in practice.
    max_epsilon: float = Field(default=10.0, gt=0)
    #: What to do when the planned rounds would spend more than ``max_epsilon``: refuse to
    #: start (default), or train and record that the model is not differentially private.
    above_max: Literal["refuse", "label"] = "refuse"


class SecAggConfig(_Strict):
    """SecAgg+ (Flower's ``SecAggPlusWorkflow`` and ``secaggplus_mod``): the coordinator sees
    only the sum of the silos' updates."""

    protocol: Literal["secagg+"] = "secagg+"
    num_shares: int = Field(default=3, ge=2)
    reconstruction_threshold: int = Field(default=2, ge=2)
    #: Each update is quantised within ±clipping_range before masking.
    clipping_range: float = Field(default=8.0, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> SecAggConfig:
        if self.reconstruction_threshold > self.num_shares:
            raise ValueError("reconstruction_threshold cannot exceed num_shares")
        return self


class FederatedConfig(_Strict):
    """One federated training job (``shipyard federated run --config job.yaml``)."""

    label: str = Field(min_length=1, max_length=200)
    model: Literal["logistic"] = "logistic"
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    proximal_mu: float = Field(default=0.0, ge=0)
    rounds: int = Field(default=30, ge=1, le=1000)
    local_epochs: int = Field(default=1, ge=1, le=100)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=0.02, gt=0)
    l2: float = Field(default=1e-4, ge=0)
    #: A round waits this long for the silos' answers, then goes on with those that came
    #: (Flower's own default waits an hour).
    round_timeout: float = Field(default=120.0, gt=0)
    #: How long to wait for the silos to connect and answer their first message (on a
    #: Flower deployment that first message also installs the app at each SuperNode).
    join_timeout: float = Field(default=120.0, gt=0)
    #: Fewest silos whose answers a round needs; below it the job stops with the reason.
    min_silos: int = Field(default=2, ge=1)
    #: Share of each silo's rows kept out of training, for its own evaluation.
    holdout: float = Field(default=0.2, gt=0, lt=0.9)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    seed: int = 0
    dp: DPConfig | None = None
    secure_aggregation: SecAggConfig | None = None

    @model_validator(mode="after")
    def _valid(self) -> FederatedConfig:
        if self.strategy == "fedprox" and self.proximal_mu <= 0:
            raise ValueError("fedprox needs proximal_mu > 0 (e.g. 0.1)")
        if self.strategy == "fedavg" and self.proximal_mu > 0:
            raise ValueError("proximal_mu applies to fedprox; set strategy: fedprox")
        if (
            self.dp is not None
            and self.secure_aggregation is not None
            and self.dp.mode == "central-server-fixed"
        ):
            raise ValueError(
                "central-server-fixed clips each silo's update at the coordinator, which "
                "SecAgg+ hides from it: use central-client-fixed with secure_aggregation"
            )
        return self

    def to_json(self) -> str:
        """The job as JSON (what travels to a Flower ServerApp as run config)."""
        return self.model_dump_json()


def load_config(source: str | Path | dict[str, Any], **overrides: Any) -> FederatedConfig:
    """A job from a YAML/JSON file or a mapping; ``overrides`` win (CLI flags)."""
    if isinstance(source, dict):
        raw = dict(source)
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
        import yaml

        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{path} is not YAML: {exc}".splitlines()[0]) from exc
        if not isinstance(raw, dict):
            raise InvalidInputError(f"{path} must hold a mapping of settings")
        raw = raw.get("spec", raw) if raw.get("kind") == "FederatedJob" else raw
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return parse_config(raw)


def parse_config(raw: dict[str, Any] | str) -> FederatedConfig:
    """Validate a job, turning pydantic's errors into one line naming the field."""
    try:
        if isinstance(raw, str):
            return FederatedConfig.model_validate(json.loads(raw))
        return FederatedConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "job"
        raise InvalidInputError(f"federated job: {where}: {first['msg']}") from exc


def check_silo_name(name: str) -> str:
    """Silo names appear in lineage, metrics and gate reports."""
    if not SILO_NAME.match(name):
        raise InvalidInputError(
            f"a silo name is letters, digits, '.', '_' or '-' (at most 64); got {name!r}"
        )
    return name
