"""The run guard: no change to a run may break a registered version built from it.

Kept apart from the registry service (and its model-format imports) so that a process
which only tracks runs installs it without loading what registration needs.
"""

from __future__ import annotations

from shipyard.core.errors import ConflictError
from shipyard.registry.ports import RegistryStore


def check_run_change(
    store: RegistryStore, run_id: str, change: str, artifact: str | None = None
) -> None:
    """Refuse changes to a run that would break a registered version built from it.

    A version's package is the run's artifacts under its path, bound by hash: deleting
    the run, or writing under that path, would make the version unloadable (and serving
    it fail). Delete the version first.

    Raises:
        ConflictError: a live version depends on what the change would touch.
    """
    for mv in store.versions_of_run(run_id):
        prefix = mv.artifact_path.rstrip("/") + "/"
        if change == "delete" or (artifact is not None and artifact.startswith(prefix)):
            what = "delete the run" if change == "delete" else f"write {artifact}"
            raise ConflictError(
                f"cannot {what}: {mv.uri} ({mv.state.value}) is built from "
                f"runs:/{run_id}/{mv.artifact_path}; delete that version first",
                run_id=run_id,
                model=mv.name,
                version=mv.version,
            )
