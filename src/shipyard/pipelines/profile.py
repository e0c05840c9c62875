"""A compact profile of a DataFrame: what a dataset version records about its data."""

from __future__ import annotations

from typing import Any


def profile_frame(frame: Any, top: int = 10) -> dict[str, Any]:
    """Rows, and per column: dtype, nulls, and min/max/mean or the top categories."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        info: dict[str, Any] = {"dtype": str(series.dtype), "nulls": int(series.isna().sum())}
        if pd.api.types.is_bool_dtype(series):
            info["true_rate"] = float(series.mean()) if len(series) else None
        elif pd.api.types.is_numeric_dtype(series):
            clean = series.dropna()
            if len(clean):
                info.update(
                    min=float(clean.min()), max=float(clean.max()), mean=float(clean.mean())
                )
        else:
            counts = series.astype("string").value_counts(dropna=True).head(top)
            info["top"] = {str(k): int(v) for k, v in counts.items()}
            info["distinct"] = int(series.nunique(dropna=True))
        columns[str(name)] = info
    return {"rows": len(frame), "columns": columns}
