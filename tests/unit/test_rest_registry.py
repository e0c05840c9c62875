"""The REST registry must not fall back on a local store it does not have."""

from __future__ import annotations

import inspect

from shipyard.registry.service import RegistryService
from shipyard.remote.registry import RestRegistry


def test_every_store_touching_method_is_a_request() -> None:
    touching = [
        name
        for name, fn in inspect.getmembers(RegistryService, inspect.isfunction)
        # Private helpers are reached only through public methods, which are overridden.
        if not name.startswith("_") and "self.store" in inspect.getsource(fn)
    ]
    assert "register" in touching and "governed_alias" in touching  # the scan sees them
    missing = [name for name in touching if name not in RestRegistry.__dict__]
    assert missing == []
