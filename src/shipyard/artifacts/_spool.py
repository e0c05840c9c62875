"""Spool a byte stream to a temporary file while hashing it (bounded, never in memory)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from shipyard.core.errors import InvalidInputError


def spool(
    chunks: Iterable[bytes], directory: Path | None, max_size: int | None
) -> tuple[Path, str, int]:
    """Write chunks to a temp file in ``directory``; return (path, sha256, size).

    Raises:
        InvalidInputError: the stream is larger than ``max_size`` (the temp file is removed).
    """
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise InvalidInputError(
                        f"artifact is larger than the limit of {max_size} bytes",
                        max_size=max_size,
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size
