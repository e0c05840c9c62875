"""The drift methods a gate or monitor may name: declared once, without NumPy or pandas, so
declarations (specs, gate policies) check them without loading the engine."""

from __future__ import annotations

from typing import Literal, get_args

#: "auto" picks one per column, as Evidently does. A new method is one name here and one
#: entry in ``shipyard.drift.engine.DRIFT_METHODS`` (a unit test holds the two together).
DriftMethodName = Literal["auto", "psi", "ks", "chisquare", "z", "jensenshannon", "wasserstein"]
METHODS: tuple[str, ...] = get_args(DriftMethodName)
