"""MLflow's ``python_function`` loader entry point for Shipyard model packages.

``MLmodel`` names this module as ``loader_module``, so tools that follow MLflow's format
can load a Shipyard package. It never unpickles: pickled flavours need Shipyard's own
``load_model(..., trusted=True)``.
"""

from __future__ import annotations

from pathlib import Path

from shipyard.registry.package import LoadedModel, load_package


def _load_pyfunc(path: str) -> LoadedModel:
    """Load the package at ``path`` (the folder holding ``MLmodel``, or a file inside it)."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    return load_package(folder, trusted=False)
