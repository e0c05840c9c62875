"""Both registries implement the ModelRegistry Protocol, the REST one by composition: it
holds a client and the shared package code, never a store or the local service."""

from __future__ import annotations

import inspect

import pytest

from shipyard.registry.packages import PackageOperations
from shipyard.registry.ports import ModelRegistry
from shipyard.registry.service import RegistryService
from shipyard.remote.registry import RestRegistry

OPERATIONS = sorted(
    name
    for name, fn in inspect.getmembers(ModelRegistry, inspect.isfunction)
    if not name.startswith("_")
)


def _params(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("cls", [RegistryService, RestRegistry])
def test_each_registry_implements_every_operation_with_its_signature(cls: type) -> None:
    assert "register" in OPERATIONS and "governed_alias" in OPERATIONS  # the scan sees them
    for name in OPERATIONS:
        impl = getattr(cls, name)
        if name in PackageOperations.__dict__ and name in ("get_model", "get_version"):
            # The package mixin's are placeholders: each registry reads its own.
            assert name in cls.__dict__, name
        assert _params(impl) == _params(getattr(ModelRegistry, name)), name


def test_the_rest_registry_is_composed_not_a_local_service() -> None:
    assert not issubclass(RestRegistry, RegistryService)
    source = inspect.getsource(RestRegistry)
    assert "self.store" not in source
    # Everything it does that is not package work is a request to the server.
    for name in OPERATIONS:
        if name in ("log_model", "resolve", "load", "guard_run_change"):
            continue
        body = inspect.getsource(getattr(RestRegistry, name))
        assert "self.client" in body or "raise InvalidInputError" in body, name
