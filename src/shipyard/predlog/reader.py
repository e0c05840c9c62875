"""Reading the prediction log back: newest rows (tail) and filtered exports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError, NotFoundError


def log_files(root: Path, deployment: str | None = None, stem: str = "part") -> list[Path]:
    """Complete Parquet files, oldest first (in-progress files are dot-named and skipped);
    ``stem="failed"`` for failed requests."""
    if not root.is_dir():
        raise NotFoundError(f"no prediction log at {root}", path=str(root))
    name = f"{stem}-*.parquet"
    pattern = f"deployment={deployment}/**/{name}" if deployment else f"**/{name}"
    files = [p for p in root.glob(pattern) if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _deployment_of(path: Path) -> str:
    for part in path.parts:
        if part.startswith("deployment="):
            return part.removeprefix("deployment=")
    return ""


def read_log(
    root: Path,
    *,
    deployment: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last_rows: int | None = None,
    failed: bool = False,
) -> Any:
    """The log as one Arrow table (versions with other columns are unified by name);
    ``failed=True`` reads the failed requests instead of the predictions."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = log_files(root, deployment, "failed" if failed else "part")
    if last_rows is not None and last_rows < 1:
        raise InvalidInputError("the number of rows must be at least 1")
    tables = []
    rows = 0
    for path in reversed(files):  # newest first, so a tail reads only what it needs
        table = pq.read_table(path)
        table = table.append_column(
            "deployment", pa.array([_deployment_of(path)] * table.num_rows, pa.string())
        )
        if since is not None:
            table = table.filter(
                pc.greater_equal(table["timestamp"], pa.scalar(since, table["timestamp"].type))
            )
        if until is not None:
            table = table.filter(
                pc.less(table["timestamp"], pa.scalar(until, table["timestamp"].type))
            )
        tables.append(table)
        rows += table.num_rows
        if last_rows is not None and rows >= last_rows:
            break
    if not tables:
        return pa.table({})
    merged = pa.concat_tables(list(reversed(tables)), promote_options="permissive")
    order = [("timestamp", "ascending"), ("request_id", "ascending")]
    merged = merged.sort_by(order if failed else [*order, ("row", "ascending")])
    if last_rows is not None and merged.num_rows > last_rows:
        merged = merged.slice(merged.num_rows - last_rows)
    return merged


def export_log(table: Any, dest: Path) -> Path:
    """Write a table to ``dest`` as Parquet or CSV (by extension)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = dest.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InvalidInputError(f"export to .parquet or .csv; got {dest.name!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table, dest)
    else:
        pacsv.write_csv(table, dest)
    return dest
