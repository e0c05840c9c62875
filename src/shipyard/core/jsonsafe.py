"""Strict JSON for stored documents: NaN and infinities become null."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


#: Integers a request may carry: what SQLite, PostgreSQL BIGINT and NumPy int64 hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_json(
    body: bytes | str, what: str = "the request body", *, check_ints: bool = True
) -> Any:
    """Parse JSON from outside, refusing what would break us later with a clear error.

    pydantic-core's parser (Rust) bounds nesting depth, refuses lone surrogates (text that
    no database can store) and is faster than :func:`json.loads`; integers beyond 64 bits
    are refused too, since no store or array keeps them (``check_ints=False`` leaves that
    to a caller that range-checks every integer it uses: a walk of a large body costs as
    much as parsing it). NaN and infinities are accepted, as MLflow's clients send them.

    Raises:
        InvalidInputError: the body is empty, not JSON, too deep, or holds such a value.
    """
    from pydantic_core import from_json

    from shipyard.core.errors import InvalidInputError

    if not body.strip():
        raise InvalidInputError(f"{what} is empty")
    try:
        value = from_json(body, allow_inf_nan=True)
    except ValueError as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {exc}") from None
    if check_ints:
        _check_ints(value, what)
    return value


def _check_ints(value: Any, what: str) -> None:
    from shipyard.core.errors import InvalidInputError

    pending = [value]
    pop, extend = pending.pop, pending.extend
    while pending:
        item = pop()
        kind = type(item)  # JSON gives exactly these types: no subclass to consider
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is int and not INT64_MIN <= item <= INT64_MAX:
            raise InvalidInputError(
                f"{what} holds the integer {item}, outside the 64-bit range "
                f"[{INT64_MIN}, {INT64_MAX}]"
            )
