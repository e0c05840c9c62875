"""Tables the CLI reads by reference: a file, a pipeline output or a run artifact.

``shipyard automl run`` searches on one, ``shipyard edge export`` measures on one. Each
source names itself for lineage: an AutoML run records it, and the registered version's
card lists it with the data's sha256.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError, NotFoundError


@dataclass
class Source:
    """A table, and what it was."""

    frame: Any
    name: str


def _read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise InvalidInputError(f"data files must be .parquet or .csv; got {path.name!r}")


def load_source(ref: str) -> Source:
    """Read ``ref``: ``PATH.parquet|csv``, ``prun_…:STEP[:OUTPUT]`` (a pipeline output) or
    ``runs:/RUN_ID/ARTIFACT`` (a table logged in a run).

    Raises:
        InvalidInputError: the reference or the table is not usable.
        NotFoundError: the run, step or file does not exist.
    """
    import pandas as pd

    if ref.startswith("prun_"):
        from shipyard.sdk.pipelines import runner

        run_id, _, rest = ref.partition(":")
        step, _, output = rest.partition(":")
        if not step:
            raise InvalidInputError(
                f"name the step whose output to read: {run_id}:STEP; got {ref!r}"
            )
        active = runner()
        record = active.store.get_pipeline_run(run_id)
        for step_run in record.steps:
            if step_run.step == step:
                for out in step_run.outputs:
                    if out.name == (output or "output"):
                        frame = active.load_output(out)
                        if not isinstance(frame, pd.DataFrame):
                            raise InvalidInputError(
                                f"{ref} is a {type(frame).__name__}, not a table"
                            )
                        name = f"pipeline_run:{run_id}/{step}:{out.name} sha256:{out.digest}"
                        return Source(frame, name)
                raise NotFoundError(
                    f"step {step!r} of {run_id} has no output {output or 'output'!r}"
                )
        raise NotFoundError(f"pipeline run {run_id} has no step {step!r}")
    if ref.startswith("runs:/"):
        from shipyard.sdk import context

        run_id, _, artifact = ref.removeprefix("runs:/").partition("/")
        if not artifact:
            raise InvalidInputError(f"name the artifact: runs:/RUN_ID/PATH; got {ref!r}")
        tracking = context.current().get_backend().tracking
        digest = next(
            (a.digest for a in tracking.list_artifacts(run_id) if a.name == artifact), None
        )
        if digest is None:
            raise NotFoundError(f"run {run_id} has no artifact {artifact!r}")
        with tempfile.TemporaryDirectory(prefix="shipyard-data-") as tmp:
            path = Path(tmp) / Path(artifact).name
            tracking.download_artifact(run_id, artifact, path)
            frame = _read_table(path)
        return Source(frame, f"run:{run_id}/{artifact} sha256:{digest}")
    path = Path(ref).expanduser()
    if not path.is_file():
        raise NotFoundError(f"no data file at {ref}")
    return Source(_read_table(path), f"file:{path.resolve()}")


def split_target(frame: Any, target: str) -> tuple[Any, Any]:
    """Features and target of a table.

    Raises:
        InvalidInputError: the table has no column ``target``.
    """
    if target not in frame.columns:
        raise InvalidInputError(
            f"the data has no column {target!r}; its columns are "
            f"{', '.join(map(str, list(frame.columns)[:20]))}"
        )
    return frame.drop(columns=[target]), frame[target]
