"""A generic Python model class, stored by pickle (loaded only when trusted)."""

from __future__ import annotations

import numpy as np


class ThresholdModel:
    """Flags rows whose first column is above a threshold."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, X: object) -> np.ndarray:
        return (np.asarray(X, dtype=float)[:, 0] > self.threshold).astype(int)
