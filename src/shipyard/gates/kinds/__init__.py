"""Gate check kinds: each module of this package defines one (``CHECK``, a CheckSpec with
its parameters and its evaluation), so adding a kind is adding that module and its test.

Modules import NumPy, pandas, fairlearn or pandera only inside ``run``: reading and
validating a policy (a spec, the CLI) stays light.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from shipyard.gates.kinds._base import METRICS, CheckSpec, check_metric

__all__ = ["METRICS", "CheckSpec", "check_metric", "kinds"]


@functools.cache
def kinds() -> dict[str, type[CheckSpec]]:
    """Every check kind of this package by name, in listing order."""
    found: list[type[CheckSpec]] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "CHECK", None)
        if isinstance(spec, type) and issubclass(spec, CheckSpec):
            found.append(spec)
    ordered = sorted(found, key=lambda c: (c.order, _kind_of(c)))
    return {_kind_of(c): c for c in ordered}


def _kind_of(spec: type[CheckSpec]) -> str:
    return str(spec.model_fields["kind"].default)
