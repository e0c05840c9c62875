"""Validation of user-supplied names, keys and values.

The rules follow MLflow's where MLflow has one, so keys that work there work here:
keys may hold letters (any script), digits, ``_ - . / :`` and spaces, at most 250
characters, and never a ``..`` segment or a leading ``/``.
"""

from __future__ import annotations

import math
import re

from shipyard.core.errors import InvalidInputError

MAX_KEY_LENGTH = 250
MAX_NAME_LENGTH = 256
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000

_KEY_RE = re.compile(r"^[\w\-. /:]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _shorten(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a valid metric, param or tag key, else raise."""
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"{what} must be a non-empty string; got {key!r}", value=key)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{what} must be at most {MAX_KEY_LENGTH} characters; got {len(key)} "
            f"({_shorten(key)!r})",
            value=key,
        )
    if not _KEY_RE.match(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidInputError(
            f"{what} may hold letters, digits, '_', '-', '.', '/', ':' and spaces, with no "
            f"leading '/' or '..' segment; got {_shorten(key)!r}",
            value=key,
        )
    return key


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a valid display name (experiment, run), else raise."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{what} must be a non-empty string; got {name!r}", value=name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{what} must be at most {MAX_NAME_LENGTH} characters; got {len(name)}", value=name
        )
    if _CONTROL_RE.search(name):
        raise InvalidInputError(
            f"{what} must not contain control characters; got {_shorten(name)!r}", value=name
        )
    return name


def check_text(value: object, what: str, limit: int) -> str:
    """Return ``value`` as a string if it fits ``limit`` characters and holds no NUL."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInputError(
            f"{what} must be at most {limit} characters; got {len(text)}", value=_shorten(text)
        )
    if "\x00" in text:
        raise InvalidInputError(f"{what} must not contain NUL bytes", value=_shorten(text))
    return text


def check_metric_value(value: object, key: str) -> float:
    """Return ``value`` as a float; NaN and infinities are kept, as MLflow keeps them.

    Numbers of any kind (Python, NumPy, Decimal) are accepted; strings, booleans and
    containers are refused so that a typo never turns into a silent 1.0.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, bool | str | bytes) or value is None:
        raise InvalidInputError(
            f"metric {key!r} value must be a number; got {value!r}", key=key, value=value
        )
    try:
        return float(value)  # type: ignore[arg-type]  # int, numpy scalars, Decimal
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(
            f"metric {key!r} value must be a number; got {value!r}", key=key, value=value
        ) from exc


def check_step(step: object) -> int:
    """Return ``step`` as an int if it is a non-negative integer below 2**63."""
    if isinstance(step, bool | str | bytes | float):
        raise InvalidInputError(f"step must be an integer; got {step!r}", value=step)
    try:
        number: int = int(step)  # type: ignore[call-overload]  # int and numpy integers
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"step must be an integer; got {step!r}", value=step) from exc
    if not 0 <= number < 2**63:
        raise InvalidInputError(f"step must be between 0 and 2**63-1; got {number}", value=step)
    return number


def is_finite(value: float) -> bool:
    """Tell whether a metric value is finite (JSON and some stores need special care)."""
    return math.isfinite(value)


#: ``${NAME}``: a value read from the environment where it is used (secrets in specs).
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,127})\}")


def expand_env(value: str, where: str) -> str:
    """``value`` with each ``${NAME}`` replaced by that environment variable of this process."""
    import os

    def one(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if found is None:
            raise InvalidInputError(f"{where}: environment variable {match.group(1)} is not set")
        return found

    return ENV_REF.sub(one, value)
