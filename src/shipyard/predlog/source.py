"""The prediction log as monitoring's PredictionSource."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.core.errors import NotFoundError
from shipyard.predlog.reader import read_log


class ParquetPredictionSource:
    """Reads the Parquet prediction log the model server writes (``SHIPYARD_PREDLOG``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def predictions(
        self,
        deployment: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
    ) -> Any:
        """Rows of one deployment as a DataFrame (empty when nothing was logged)."""
        import pandas as pd

        try:
            table = read_log(self.root, deployment=deployment, since=since, until=until)
        except NotFoundError:
            return pd.DataFrame(columns=columns or [])
        if columns is not None:
            present = [c for c in columns if c in table.column_names]
            table = table.select(present)
        return table.to_pandas()

    def failures(
        self, deployment: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Any:
        """Failed requests of one deployment (timestamp, version, role, status, latency)."""
        import pandas as pd

        try:
            table = read_log(
                self.root, deployment=deployment, since=since, until=until, failed=True
            )
        except NotFoundError:
            return pd.DataFrame(columns=["request_id", "timestamp", "version", "role", "status"])
        if table.num_rows == 0:
            return pd.DataFrame(columns=["request_id", "timestamp", "version", "role", "status"])
        return table.to_pandas()
