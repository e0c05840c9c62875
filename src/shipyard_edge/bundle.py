"""The edge bundle: one zip file a device can trust or refuse as a whole.

A bundle holds ``model.onnx``, ``signature.json`` (the columns and how to encode them),
``manifest.json`` (every file's SHA-256 and size, the source model version, the target's
budgets and what was measured, library versions) and ``manifest.sig`` (an Ed25519 signature
of the manifest's exact bytes). Verification checks the signature against trusted public
keys, then every file against the manifest, and refuses a bundle with a file missing, a file
added, a file changed or an unsafe name: nothing of an unverified bundle is ever used.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "shipyard-edge-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MODEL = "model.onnx"
COLUMNS = "signature.json"
#: Largest bundle and largest member a device reads (a zip bomb is refused before inflating).
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


#: What reading a damaged or hostile zip member raises (a flipped byte is a zlib error).
_CORRUPT = (
    zipfile.BadZipFile,
    OSError,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


class BundleError(ValueError):
    """A bundle that is malformed, unsigned, signed by an unknown key, or changed."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle's contents, held in memory (never extracted to disk)."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    key_id: str

    @property
    def bundle_id(self) -> str:
        """The bundle's identity: model, version, target and a hash of the manifest."""
        return str(self.manifest["bundle_id"])

    @property
    def columns(self) -> dict[str, Any]:
        """The parsed ``signature.json``."""
        loaded: dict[str, Any] = json.loads(self.files[COLUMNS])
        return loaded


def key_id(public_raw: bytes) -> str:
    """A public key's short identity: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def load_public_keys(source: str | Path | Mapping[str, bytes]) -> dict[str, Any]:
    """Trusted Ed25519 public keys by key id: from PEM files (a file, or every ``*.pub`` and
    ``*.pem`` in a folder) or a mapping of names to PEM bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    pems: list[tuple[str, bytes]] = []
    if isinstance(source, Mapping):
        pems = list(source.items())
    else:
        path = Path(source)
        if path.is_dir():
            found = sorted([*path.glob("*.pub"), *path.glob("*.pem")])
            pems = [(str(p), p.read_bytes()) for p in found]
        elif path.is_file():
            pems = [(str(path), path.read_bytes())]
        else:
            raise BundleError(f"no trusted keys at {path}")
    keys: dict[str, Any] = {}
    for name, pem in pems:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise BundleError(f"{name} is not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BundleError(f"{name} is not an Ed25519 public key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys[key_id(raw)] = key
    if not keys:
        raise BundleError(f"no trusted keys found in {source}")
    return keys


def _members(data: bytes) -> dict[str, bytes]:
    """The zip's members, read safely: plain names only, no duplicates, bounded sizes."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise BundleError(f"not a bundle (not a zip file): {exc}") from None
    out: dict[str, bytes] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            name = info.filename
            if "/" in name or "\\" in name or name.startswith(".") or not name:
                raise BundleError(f"unsafe member name {name!r} in the bundle")
            if name in out:
                raise BundleError(f"the bundle holds {name!r} twice")
            total += info.file_size
            if total > MAX_BUNDLE_BYTES:
                raise BundleError("the bundle inflates past its size limit")
            try:
                out[name] = archive.read(info)
            except _CORRUPT as exc:
                raise BundleError(f"{name} cannot be read (the bundle is damaged): {exc}") from None
    return out


def verify_bytes(data: bytes, trusted: Mapping[str, Any]) -> Bundle:
    """Check a bundle's signature and every file; the verified contents or BundleError."""
    from cryptography.exceptions import InvalidSignature

    members = _members(data)
    for needed in (MANIFEST, SIGNATURE):
        if needed not in members:
            raise BundleError(f"the bundle has no {needed}")
    try:
        sig = json.loads(members[SIGNATURE])
        signature = base64.b64decode(sig["signature"], validate=True)
        kid = str(sig["key_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{SIGNATURE} is malformed: {exc}") from None
    key = trusted.get(kid)
    if key is None:
        raise BundleError(f"signed by key {kid}, which is not trusted here")
    try:
        key.verify(signature, members[MANIFEST])
    except InvalidSignature:
        raise BundleError("the manifest's signature does not verify: it was changed") from None
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as exc:
        raise BundleError(f"{MANIFEST} is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} manifest")
    listed: dict[str, Any] = manifest.get("files") or {}
    extra = set(members) - set(listed) - {MANIFEST, SIGNATURE}
    if extra:
        raise BundleError(f"files not in the manifest: {', '.join(sorted(extra))}")
    for name, entry in listed.items():
        body = members.get(name)
        if body is None:
            raise BundleError(f"{name} is in the manifest but not in the bundle")
        if len(body) != entry.get("bytes") or sha256(body) != entry.get("sha256"):
            raise BundleError(f"{name} does not match its hash in the manifest: it was changed")
    for needed in (MODEL, COLUMNS):
        if needed not in listed:
            raise BundleError(f"the manifest lists no {needed}")
    files = {name: members[name] for name in listed}
    return Bundle(manifest=manifest, files=files, key_id=kid)


def verify(path: str | Path, trusted: Mapping[str, Any]) -> Bundle:
    """Check the bundle file at ``path`` (see :func:`verify_bytes`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    return verify_bytes(data, trusted)


def write_bundle(
    dest: str | Path, files: Mapping[str, bytes], manifest: dict[str, Any], sign: Any
) -> dict[str, Any]:
    """Write a signed bundle: ``files`` plus the manifest (completed with each file's hash)
    and its signature. ``sign`` is an Ed25519 private key. Returns the manifest written."""
    from cryptography.hazmat.primitives import serialization

    public_raw = sign.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    manifest = {
        **manifest,
        "format": FORMAT,
        "files": {n: {"sha256": sha256(b), "bytes": len(b)} for n, b in sorted(files.items())},
        "key_id": key_id(public_raw),
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    signature = {
        "algorithm": "Ed25519",
        "key_id": manifest["key_id"],
        "signature": base64.b64encode(sign.sign(body)).decode(),
    }
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
        zf.writestr(MANIFEST, body)
        zf.writestr(SIGNATURE, json.dumps(signature, indent=2))
    tmp.replace(path)
    return manifest
