"""Privacy accounting for central DP: epsilon from Flower's RDP accountant (Google's
dp-accounting underneath), and what a card may claim from it.

Each round that aggregates is one Gaussian release with the job's noise multiplier. Every
silo takes part in every round, so no sampling amplification is claimed; the neighbouring
relation is add-or-remove one silo (silo-level DP, as Flower's central DP defines it).
"""

from __future__ import annotations

from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.federated.config import DP_MODES, DPConfig

UNIT = "silo (add or remove one silo's data)"


def epsilon(
    noise_multiplier: float, releases: int | list[float], silos: int, delta: float
) -> float:
    """Cumulative epsilon at ``delta`` after ``releases`` full-participation rounds, or one
    release per entry of a list of each round's effective noise multiplier."""
    multipliers = [noise_multiplier] * releases if isinstance(releases, int) else releases
    if not multipliers:
        return 0.0
    try:
        from flwr.supercore.privacy_accounting import (
            GaussianPrivacyEvent,
            NeighboringRelation,
            PrivacyConfig,
            SamplingMethod,
        )
        from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise InvalidInputError(
            "privacy accounting needs the federated extra: pip install 'shipyard[federated]'"
        ) from exc
    accountant = RdpAccountant(
        PrivacyConfig(
            target_delta=delta,
            population_size=silos,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )
    for z in multipliers:
        accountant.compose(GaussianPrivacyEvent(z, silos, silos))
    return float(accountant.get_privacy_spent().epsilon)


class Accounting:
    """The privacy a job plans to spend and what it spent."""

    def __init__(self, dp: DPConfig, silos: int) -> None:
        self.dp = dp
        self.silos = silos

    def check_plan(self, rounds: int) -> float:
        """The epsilon the planned rounds would spend; refuses a plan above max_epsilon."""
        planned = epsilon(self.dp.noise_multiplier, rounds, self.silos, self.dp.delta)
        if planned > self.dp.max_epsilon and self.dp.above_max == "refuse":
            raise InvalidInputError(
                f"{rounds} rounds at noise_multiplier {self.dp.noise_multiplier:g} spend "
                f"epsilon {planned:.2f} at delta {self.dp.delta:g}, above max_epsilon "
                f"{self.dp.max_epsilon:g}: raise the noise, train fewer rounds, or set "
                "dp.above_max: label to train a model that is not called DP"
            )
        return planned

    def spent(self, answered: list[int]) -> dict[str, Any]:
        """The record kept in the report and the model card, from how many silos each
        aggregated round averaged. Flower calibrates the noise to the configured number of
        silos (std = z * C / n); a round that averaged m < n answers had a sensitivity of
        C / m, so its effective noise multiplier is z * m / n and it is accounted as such."""
        multipliers = [self.dp.noise_multiplier * m / self.silos for m in answered if m > 0]
        eps = epsilon(self.dp.noise_multiplier, multipliers, self.silos, self.dp.delta)
        releases = len(multipliers)
        dp_claim = eps <= self.dp.max_epsilon
        return {
            "mechanism": f"Gaussian, Flower {DP_MODES[self.dp.mode]} (preview in Flower)",
            "mode": self.dp.mode,
            "noise_multiplier": self.dp.noise_multiplier,
            "clipping_norm": self.dp.clipping_norm,
            "releases": releases,
            "silos": self.silos,
            "effective_noise_multipliers": sorted({round(z, 6) for z in multipliers}),
            "unit": UNIT,
            "sampling": "every silo every round (no amplification)",
            "accountant": "RDP (flwr.supercore.privacy_accounting, dp-accounting)",
            "epsilon": round(eps, 4),
            "delta": self.dp.delta,
            "max_epsilon": self.dp.max_epsilon,
            "differentially_private": dp_claim,
        }


def statement(privacy: dict[str, Any] | None) -> str:
    """One line a card may carry: DP is claimed only within the configured epsilon."""
    if not privacy:
        return "Not differentially private: the job added no noise."
    eps, delta, cap = privacy["epsilon"], privacy["delta"], privacy.get("max_epsilon")
    if not privacy.get("differentially_private"):
        return (
            f"Not called differentially private: epsilon {eps:g} at delta {delta:g} is above "
            f"the configured maximum {cap:g}."
        )
    within = f" (maximum {cap:g})"
    return (
        f"({eps:g}, {delta:g})-differentially private per {privacy['unit']}{within}, "
        f"{privacy['releases']} noised rounds, noise multiplier {privacy['noise_multiplier']:g}, "
        f"clipping norm {privacy['clipping_norm']:g}."
    )
