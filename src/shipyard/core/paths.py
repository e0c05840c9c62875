"""Artifact names: relative POSIX paths that can never escape their store."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from shipyard.core.errors import InvalidInputError

MAX_ARTIFACT_NAME_LENGTH = 1024
_SEGMENT_RE = re.compile(r"^[^\x00-\x1f\x7f\\:*?\"<>|]+$")


def check_artifact_name(name: object) -> str:
    """Return the normalised artifact name, or raise if it could escape or is malformed.

    A name is a relative POSIX path of non-empty segments; ``.``/``..`` segments, absolute
    paths, backslashes, drive letters, NUL and control characters are refused, so that a
    name joined under any root stays under it.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(
            f"artifact name must be a non-empty string; got {name!r}", value=name
        )
    if len(name) > MAX_ARTIFACT_NAME_LENGTH:
        raise InvalidInputError(
            f"artifact name must be at most {MAX_ARTIFACT_NAME_LENGTH} characters; got {len(name)}",
            value=name[:60],
        )
    if "\x00" in name:
        raise InvalidInputError("artifact name must not contain NUL bytes", value=name)
    if name.startswith("/") or name.startswith("~"):
        raise InvalidInputError(f"artifact name must be a relative path; got {name!r}", value=name)
    if "\ufffd" in name:
        raise InvalidInputError(
            f"artifact name holds bytes that are not UTF-8 (an overlong or broken encoding); "
            f"got {name!r}",
            value=name,
        )
    _refuse_disguised_traversal(name)
    segments = name.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidInputError(
                f"artifact name must not contain empty, '.' or '..' segments; got {name!r}",
                value=name,
            )
        if not _SEGMENT_RE.match(segment) or segment != segment.strip():
            raise InvalidInputError(
                "artifact name segments must not contain control characters, "
                f"'\\', ':', '*', '?', '\"', '<', '>', '|' or edge spaces; got {name!r}",
                value=name,
            )
    return str(PurePosixPath(*segments))


def _refuse_disguised_traversal(name: str) -> None:
    """Refuse a name that a later decoding would turn into a way out: percent-encoded
    (``%2e%2e%2f``, also double) or Unicode compatibility forms (fullwidth dots and solidus)."""
    seen, current = {name}, name
    for _ in range(3):  # percent-decoding, up to triple encoding
        decoded = unquote(current)
        if decoded == current:
            break
        seen.add(decoded)
        current = decoded
    seen |= {unicodedata.normalize("NFKC", form) for form in list(seen)}
    for form in seen - {name}:
        parts = form.replace("\\", "/").split("/")
        if form.startswith(("/", "~")) or any(p in (".", "..") for p in parts) or "\x00" in form:
            raise InvalidInputError(
                f"artifact name must not hide a path that leaves its folder once decoded or "
                f"normalised (as {form[:60]!r}); got {name!r}",
                value=name[:60],
            )


def confined(root: Path, relative: str) -> Path:
    """Join ``relative`` under ``root`` and prove the result (links resolved) stays there."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise InvalidInputError(
            f"path escapes its store: {relative!r} resolves outside {str(base)!r}",
            value=relative,
        )
    return target
