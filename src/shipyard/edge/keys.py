"""Ed25519 signing keys for edge bundles, kept in a folder readable by their owner only.

``<name>.key`` holds the private key (PKCS#8 PEM, encrypted with a passphrase when one is
configured), ``<name>.pub`` the public key devices trust. A key is never overwritten: a
device fleet trusts it by its id, so replacing it in place would strand them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard_edge.bundle import key_id

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class KeyInfo:
    """A signing key's name, id and where its public half is."""

    name: str
    key_id: str
    public_path: str
    encrypted: bool


class KeyRing:
    """Signing keys in ``folder``; ``passphrase`` encrypts private keys at rest."""

    def __init__(self, folder: str | Path, passphrase: str | None = None) -> None:
        self.folder = Path(folder)
        self._passphrase = passphrase.encode() if passphrase else None

    def _paths(self, name: str) -> tuple[Path, Path]:
        if not NAME.match(name):
            raise InvalidInputError(
                f"a key name is letters, digits, '.', '_' or '-' (at most 64); got {name!r}"
            )
        return self.folder / f"{name}.key", self.folder / f"{name}.pub"

    def create(self, name: str) -> KeyInfo:
        """Make a new key pair; ConflictError if ``name`` exists."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private_path, public_path = self._paths(name)
        if private_path.exists() or public_path.exists():
            raise ConflictError(f"key {name!r} exists already in {self.folder}", key=name)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        encryption: Any = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        public = key.public_key()
        public_path.write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return self.info(name)

    def info(self, name: str) -> KeyInfo:
        """A key's name, id and public file."""
        from cryptography.hazmat.primitives import serialization

        private_path, public_path = self._paths(name)
        if not public_path.exists():
            raise NotFoundError(f"no signing key {name!r} in {self.folder}", key=name)
        public = serialization.load_pem_public_key(public_path.read_bytes())
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        encrypted = private_path.exists() and b"ENCRYPTED" in private_path.read_bytes()
        return KeyInfo(name, key_id(raw), str(public_path), encrypted)

    def list(self) -> list[KeyInfo]:
        """Every key in the folder."""
        if not self.folder.exists():
            return []
        return [self.info(p.stem) for p in sorted(self.folder.glob("*.pub"))]

    def private(self, name: str) -> Any:
        """The private key to sign with."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private_path, _ = self._paths(name)
        if not private_path.exists():
            raise NotFoundError(
                f"no private key {name!r} in {self.folder} (shipyard edge keys create {name})",
                key=name,
            )
        try:
            key = serialization.load_pem_private_key(
                private_path.read_bytes(), password=self._passphrase
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot open key {name!r}: {exc} (is SHIPYARD_EDGE_KEY_PASSPHRASE right?)"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInputError(f"key {name!r} is not an Ed25519 key")
        return key

    def public_pem(self, name: str) -> bytes:
        """The public key, as devices install it."""
        _, public_path = self._paths(name)
        if not public_path.exists():
            raise NotFoundError(f"no signing key {name!r} in {self.folder}", key=name)
        return public_path.read_bytes()

    def trusted(self) -> dict[str, Any]:
        """Every public key here, by id (what ``shipyard edge verify`` trusts by default)."""
        from shipyard_edge.bundle import load_public_keys

        return load_public_keys({p.name: p.read_bytes() for p in self.folder.glob("*.pub")})
