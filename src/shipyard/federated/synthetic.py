"""Non-IID synthetic bank silos (seeded): the same risk rule everywhere, different customers.

Each silo has its own size, feature means (its customer base), base default rate and one
feature it records with extra noise, as credit books of different banks do; no real data is
downloaded or needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FEATURES = 12
LABEL = "default"


def bank_silos(rows: int = 200_000, silos: int = 5, seed: int = 0) -> dict[str, Any]:
    """``silos`` DataFrames (``bank-a`` …) with ``rows`` rows in all and a 0/1 ``default``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    coef = rng.normal(0.0, 0.55, FEATURES)
    shares = rng.dirichlet(np.full(silos, 4.0))
    sizes = np.maximum((shares * rows).astype(int), 200)
    sizes[-1] = max(200, rows - int(sizes[:-1].sum()))
    out: dict[str, Any] = {}
    for i, n in enumerate(sizes):
        shift = rng.normal(0.0, 0.6, FEATURES)
        scale = rng.uniform(0.7, 1.5, FEATURES)
        X = rng.normal(shift, scale, (int(n), FEATURES))
        base = rng.normal(-1.6, 0.35)
        noisy = rng.integers(FEATURES)
        logit = X @ coef + base - shift @ coef * 0.5
        X[:, noisy] += rng.normal(0.0, 1.0, int(n))
        y = (rng.random(int(n)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        frame = pd.DataFrame(X, columns=[f"f{j:02d}" for j in range(FEATURES)])
        frame[LABEL] = y
        out[f"bank-{chr(ord('a') + i)}"] = frame
    return out
