"""FileAuditAnchor: the audit chain's head in a signed file beside (not in) the database.

Whoever can rewrite the audit table can recompute every hash of the chain, cut its newest
events or empty it, and the chain alone still walks clean. The anchor file records the
newest event's sequence number and hash after each append, signed with HMAC-SHA256 under
a key the database never sees (``SHIPYARD_AUDIT_KEY``, or a random key created in
``audit.key`` beside the anchor with owner-only permissions). ``audit verify`` holds the
chain against it. Writers in several processes take a file lock and only ever move the
anchor forward; a write is a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from shipyard.core.audit import Anchor
from shipyard.core.errors import StoreError


class FileAuditAnchor:
    """The AuditAnchorStore port on a local file (one per store)."""

    def __init__(self, path: Path, store_id: str, key: bytes | None = None) -> None:
        self.path = path
        self.store_id = store_id
        self._key = key

    def _key_bytes(self) -> bytes:
        if self._key is None:
            key_file = self.path.with_name("audit.key")
            if not key_file.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
            self._key = bytes.fromhex(key_file.read_text().strip())
        return self._key

    def _mac(self, seq: int, digest: str, when: int) -> str:
        message = f"{self.store_id}|{seq}|{digest}|{when}".encode()
        return hmac.new(self._key_bytes(), message, hashlib.sha256).hexdigest()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> Anchor | None:
        """The anchored head, or None before the first event.

        Raises:
            StoreError: the file is unreadable or its signature does not match.
        """
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"the audit anchor {self.path} is unreadable: {exc}") from None
        try:
            anchor = Anchor(int(doc["seq"]), str(doc["hash"]), int(doc["time"]))
            mac = str(doc["mac"])
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"the audit anchor {self.path} is malformed") from None
        if doc.get("store") != self.store_id or not hmac.compare_digest(
            mac, self._mac(anchor.seq, anchor.hash, anchor.time)
        ):
            raise StoreError(
                f"the audit anchor {self.path} has a bad signature: it was forged, edited "
                "or belongs to another store"
            )
        return anchor

    def advance(self, seq: int, hash: str) -> None:
        """Move the anchor to a newer head; an older one is ignored."""
        with self._locked():
            try:
                current = self.read()
            except StoreError:
                current = None  # a broken anchor is reported by verify, not fixed silently
                if self.path.exists():
                    return
            if current is not None and current.seq >= seq:
                return
            when = time.time_ns() // 1_000_000
            doc = {
                "store": self.store_id,
                "seq": seq,
                "hash": hash,
                "time": when,
                "mac": self._mac(seq, hash, when),
            }
            partial = self.path.with_name(f".{self.path.name}.partial")
            partial.write_text(json.dumps(doc))
            partial.replace(self.path)
