"""What a step prints and logs, kept with its run (``logs/step.log``) for the UI and the CLI.

Steps may run side by side on threads of one process, so the capture follows the step's
context (a ContextVar), not the process: ``sys.stdout``/``sys.stderr`` are wrapped once by a
tee that still writes through to the real stream, and one logging handler copies records
while a capture is active. Each capture keeps at most ``LIMIT`` characters (the tail).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

LIMIT = 1_000_000
LOG_ARTIFACT = "logs/step.log"


class _Buffer:
    """A bounded text buffer that keeps the newest output."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        while self.size > LIMIT and len(self.parts) > 1:
            gone = self.parts.pop(0)
            self.size -= len(gone)
            self.dropped += len(gone)

    def text(self) -> str:
        body = "".join(self.parts)[-LIMIT:]
        if self.dropped:
            return f"[{self.dropped:,} earlier characters dropped]\n{body}"
        return body


_CURRENT: ContextVar[_Buffer | None] = ContextVar("shipyard_step_capture", default=None)
_LOCK = threading.Lock()


class _Tee:
    """Writes to the wrapped stream, and to the active step's buffer when there is one."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        buffer = _CURRENT.get()
        if buffer is not None:
            buffer.write(text)
        return self._inner.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Handler(logging.Handler):
    """Copies log records into the active step's buffer."""

    def emit(self, record: logging.LogRecord) -> None:
        buffer = _CURRENT.get()
        if buffer is not None:
            with contextlib.suppress(Exception):  # a bad record must not fail the step
                buffer.write(self.format(record) + "\n")


_HANDLER = _Handler()
_HANDLER.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def _install() -> None:
    with _LOCK:
        if not isinstance(sys.stdout, _Tee):
            sys.stdout = _Tee(sys.stdout)
        if not isinstance(sys.stderr, _Tee):
            sys.stderr = _Tee(sys.stderr)
        root = logging.getLogger()
        if _HANDLER not in root.handlers:
            root.addHandler(_HANDLER)


@contextlib.contextmanager
def captured() -> Iterator[_Buffer]:
    """Collect what the code in this context prints and logs (and still show it)."""
    _install()
    buffer = _Buffer()
    token = _CURRENT.set(buffer)
    try:
        yield buffer
    finally:
        _CURRENT.reset(token)
