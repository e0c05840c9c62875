"""Edge MLOps: export signed bundles, roll them out by device group, take devices' telemetry.

Every decision is audited (``edge.bundle.export``, ``edge.rollout.start`` / ``.percent`` /
``.rollback``, ``edge.device.bundle`` when a device reports running another bundle) and
every arrow is a lineage edge: model version -> bundle (``exported_to``), bundle -> device
group (``rolled_out_to``), bundle -> device (``runs_on``).

Telemetry lands in the prediction log under the deployment ``edge-<group>``, so monitors
read a device group exactly as they read a served deployment.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.actor import current_actor
from shipyard.core.blobs import BlobStore
from shipyard.core.clock import now_ms
from shipyard.core.errors import InvalidInputError, NotFoundError, StateTransitionError
from shipyard.core.ids import new_id
from shipyard.edge.export import ExportReport, Progress, plan_export, signature_file
from shipyard.edge.measure import OnnxRunner
from shipyard.edge.ports import (
    ACTIVE,
    ROLLED_BACK,
    AuditLog,
    BundleRecord,
    Device,
    EdgeStore,
    LineageEdges,
    Rollout,
)
from shipyard.edge.targets import EdgeTarget
from shipyard.registry.flavors import package_version
from shipyard.registry.ports import ModelRegistry
from shipyard.serving.deployment import row_outputs
from shipyard.serving.ports import PredictionRecord, PredictionSink
from shipyard_edge.bundle import (
    COLUMNS,
    MODEL,
    BundleError,
    load_public_keys,
    verify_bytes,
    write_bundle,
)

logger = logging.getLogger(__name__)

GROUP_PREFIX = "edge-"
#: Largest telemetry batch (records) one upload may carry.
MAX_BATCH_RECORDS = 10_000
LIBRARIES = ("onnx", "onnxruntime", "skl2onnx", "onnxmltools", "scikit-learn", "lightgbm")


def deployment_of(group: str) -> str:
    """The prediction-log deployment a device group's telemetry goes to."""
    return f"{GROUP_PREFIX}{group}"


def bucket(rollout_id: str, device: str) -> int:
    """A device's fixed place (0-99) in a rollout: raising the share only adds devices."""
    return int(hashlib.sha256(f"{rollout_id}:{device}".encode()).hexdigest()[:8], 16) % 100


def public_pem(signing_key: Any) -> str:
    """The PEM of a signing key's public half (what devices and the server trust)."""
    from cryptography.hazmat.primitives import serialization

    pem: bytes = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def build_bundle(
    registry: ModelRegistry,
    uri: str,
    target: EdgeTarget,
    data: Any,
    label: str,
    signing_key: Any,
    *,
    progress: Progress | None = None,
) -> tuple[ExportReport, bytes | None]:
    """Measure every variant of the model ``uri`` names against ``target`` and sign the
    smallest that meets every budget as a bundle (its bytes; None when none does)."""
    loaded, mv = registry.load(uri)
    if mv is None:
        raise InvalidInputError(f"{uri} is not a registered version (use models:/...)")
    report, variant, prepared = plan_export(
        loaded, mv.name, mv.version, target, data, label, progress=progress
    )
    chosen = report.chosen_result()
    if variant is None or variant.onnx is None or chosen is None or chosen.measured is None:
        return report, None
    digest = hashlib.sha256(variant.onnx).hexdigest()
    bundle_id = f"{mv.name}-v{mv.version}-{target.name}-{digest[:10]}"
    outputs = OnnxRunner(variant.onnx, 1).outputs
    files = {MODEL: variant.onnx, COLUMNS: signature_file(prepared, outputs, variant.dtype)}
    manifest: dict[str, Any] = {
        "bundle_id": bundle_id,
        "model": {
            "name": mv.name,
            "version": mv.version,
            "uri": mv.uri,
            "run_id": mv.run_id,
            "flavor": loaded.flavor,
        },
        "target": target.budgets(),
        "variant": {
            "name": chosen.name,
            "description": chosen.description,
            "measured": chosen.measured.as_dict(),
            "budgets": chosen.reasons,
        },
        "native": report.native,
        "metric": report.metric,
        "holdout_rows": report.holdout_rows,
        "libraries": {lib: package_version(lib) for lib in LIBRARIES},
        "created_at": now_ms(),
        "created_by": current_actor(),
    }
    with tempfile.TemporaryDirectory(prefix="shipyard-edge-") as tmp:
        path = Path(tmp) / f"{bundle_id}.zip"
        write_bundle(path, files, manifest, signing_key)
        return report, path.read_bytes()


class BundleExport:
    """``export`` for both sides: measure and sign here, then keep the bundle where the store
    is (``keep_signed``: in this process, or on a server after it checks the signature)."""

    registry: ModelRegistry

    def keep_signed(self, data: bytes, report: dict[str, Any], public_key: str) -> BundleRecord:
        """Keep a signed bundle; its record."""
        raise NotImplementedError

    def bundle_bytes(self, bundle_id: str) -> bytes:
        """The signed bundle file."""
        raise NotImplementedError

    def export(
        self,
        uri: str,
        target: EdgeTarget,
        data: Any,
        label: str,
        signing_key: Any,
        *,
        dest: Path | None = None,
        progress: Progress | None = None,
    ) -> tuple[ExportReport, BundleRecord | None]:
        """Measure every variant of the model ``uri`` names against ``target``; bundle, sign
        and keep the smallest that meets every budget (None when none does)."""
        report, bundle = build_bundle(
            self.registry, uri, target, data, label, signing_key, progress=progress
        )
        if bundle is None:
            return report, None
        record = self.keep_signed(bundle, report.as_dict(), public_pem(signing_key))
        if dest is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(self.bundle_bytes(record.id))
        report.bundle = record.summary() | {"path": str(dest) if dest else None}
        return report, record


class EdgeService(BundleExport):
    """Bundles, rollouts, devices and telemetry of one store."""

    def __init__(
        self,
        store: EdgeStore,
        blobs: BlobStore,
        registry: ModelRegistry,
        *,
        audit: AuditLog | None = None,
        lineage: LineageEdges | None = None,
        sink: Callable[[], PredictionSink] | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.registry = registry
        self.audit = audit
        self.lineage = lineage
        self._make_sink = sink
        self._sink: PredictionSink | None = None

    # export ------------------------------------------------------------------------------

    def keep_signed(self, data: bytes, report: dict[str, Any], public_key: str) -> BundleRecord:
        """Keep a bundle signed by the key whose public PEM is ``public_key``."""
        return self.keep(data, report, load_public_keys({"signer": public_key.encode()}))

    def keep(self, data: bytes, report: dict[str, Any], trusted: dict[str, Any]) -> BundleRecord:
        """Keep a signed bundle after checking it (its signature against ``trusted``, its
        files, its source version); the same bundle kept twice is one record."""
        try:
            bundle = verify_bytes(data, trusted)
        except BundleError as exc:
            raise InvalidInputError(f"the bundle is refused: {exc}") from None
        manifest = bundle.manifest
        source = manifest.get("model") or {}
        mv = self.registry.get_version(str(source.get("name")), int(source.get("version", 0)))
        existing = self._existing(bundle.bundle_id)
        if existing is not None:
            return existing
        variant = manifest.get("variant") or {}
        ref = self.blobs.put_chunks([data])
        record = BundleRecord(
            id=bundle.bundle_id,
            model=mv.name,
            version=mv.version,
            target=str((manifest.get("target") or {}).get("name", "")),
            variant=str(variant.get("name", "")),
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            key_id=bundle.key_id,
            blob_key=ref.digest,
            report=report,
            created_at=now_ms(),
            created_by=current_actor(),
        )
        with self._atomic():
            self.store.add_bundle(record)
            self._audit(
                "edge.bundle.export",
                f"edge-bundle:{record.id}",
                {
                    "model": mv.name,
                    "version": mv.version,
                    "target": record.target,
                    "variant": record.variant,
                    "sha256": record.sha256,
                    "key_id": record.key_id,
                    "size_bytes": record.size_bytes,
                },
            )
        self._edges([(f"model:{mv.name}/{mv.version}", f"edge-bundle:{record.id}", "exported_to")])
        return record

    def _existing(self, bundle_id: str) -> BundleRecord | None:
        try:
            return self.store.get_bundle(bundle_id)
        except NotFoundError:
            return None

    def bundle_bytes(self, bundle_id: str) -> bytes:
        """The signed bundle file."""
        record = self.store.get_bundle(bundle_id)
        return b"".join(self.blobs.read_chunks(record.blob_key))

    def bundles(self, model: str | None = None) -> list[BundleRecord]:
        """Kept bundles, newest first."""
        return self.store.list_bundles(model)

    def get_bundle(self, bundle_id: str) -> BundleRecord:
        """One bundle's record."""
        return self.store.get_bundle(bundle_id)

    # rollouts ----------------------------------------------------------------------------

    def current_rollout(self, group: str) -> Rollout | None:
        """The group's newest rollout (active or rolled back), or None."""
        found = self.store.rollouts(group)
        return found[0] if found else None

    def start_rollout(self, group: str, bundle_id: str, percent: int) -> Rollout:
        """Move ``percent`` of ``group`` to ``bundle_id``; the rest stay on what the group
        ran before (the previous rollout's bundle where it had reached every device)."""
        _check_group(group)
        _check_percent(percent)
        bundle = self.store.get_bundle(bundle_id)
        before = self.current_rollout(group)
        previous = None
        if before is not None:
            full = before.status == ACTIVE and before.percent == 100
            previous = before.bundle_id if full else before.previous_bundle_id
        if previous == bundle.id:
            previous = None
        at = now_ms()
        rollout = Rollout(
            new_id("rol"), group, bundle.id, previous, percent, ACTIVE, at, current_actor(), at
        )
        with self._atomic():
            self.store.add_rollout(rollout)
            self._audit(
                "edge.rollout.start",
                f"edge-group:{group}",
                {
                    "rollout": rollout.id,
                    "bundle": bundle.id,
                    "previous": previous,
                    "percent": percent,
                    "model": bundle.model,
                    "version": bundle.version,
                },
            )
        self._edges([(f"edge-bundle:{bundle.id}", f"edge-group:{group}", "rolled_out_to")])
        return rollout

    def set_percent(self, group: str, percent: int) -> Rollout:
        """Change the share of the group's active rollout."""
        _check_percent(percent)
        current = self._active(group)
        with self._atomic():
            changed = self.store.set_rollout(
                current.id, percent=percent, status=ACTIVE, at=now_ms()
            )
            self._audit(
                "edge.rollout.percent",
                f"edge-group:{group}",
                {
                    "rollout": current.id,
                    "bundle": current.bundle_id,
                    "from": current.percent,
                    "to": percent,
                },
            )
        return changed

    def rollback(self, group: str, reason: str | None = None) -> Rollout:
        """Send every device of the group back to the bundle it ran before the rollout."""
        current = self._active(group)
        with self._atomic():
            changed = self.store.set_rollout(
                current.id, percent=current.percent, status=ROLLED_BACK, at=now_ms()
            )
            self._audit(
                "edge.rollout.rollback",
                f"edge-group:{group}",
                {
                    "rollout": current.id,
                    "bundle": current.bundle_id,
                    "back_to": current.previous_bundle_id,
                    "reason": reason,
                },
            )
        return changed

    def _active(self, group: str) -> Rollout:
        current = self.current_rollout(group)
        if current is None:
            raise NotFoundError(f"device group {group!r} has no rollout", group=group)
        if current.status != ACTIVE:
            raise StateTransitionError(
                f"the rollout of {group!r} to {current.bundle_id} was {current.status}; "
                "start a new one"
            )
        return current

    def rollouts(self, group: str | None = None) -> list[Rollout]:
        """Rollouts, newest first."""
        return self.store.rollouts(group)

    # devices -----------------------------------------------------------------------------

    def assignment(self, device: str, group: str) -> dict[str, Any]:
        """The bundle ``device`` of ``group`` should run now."""
        current = self.current_rollout(group)
        if current is None:
            return {"bundle": None, "rollout": None}
        if current.status == ROLLED_BACK:
            chosen = current.previous_bundle_id
        elif bucket(current.id, device) < current.percent:
            chosen = current.bundle_id
        else:
            chosen = current.previous_bundle_id
        out: dict[str, Any] = {
            "bundle": chosen,
            "rollout": current.id,
            "status": current.status,
            "percent": current.percent,
        }
        if chosen is not None:
            out["sha256"] = self.store.get_bundle(chosen).sha256
        return out

    def checkin(self, device: str, group: str, running: str | None) -> dict[str, Any]:
        """Record what ``device`` runs; answer what it should run."""
        _check_group(group)
        _check_device(device)
        before = self.store.report(device, group, running, now_ms())
        changed = before is None or before.bundle_id != running
        if changed and running is not None:
            with self._atomic():
                self._audit(
                    "edge.device.bundle",
                    f"edge-device:{device}",
                    {
                        "group": group,
                        "from": before.bundle_id if before else None,
                        "to": running,
                    },
                )
            self._edges([(f"edge-bundle:{running}", f"edge-device:{device}", "runs_on")])
        return self.assignment(device, group)

    def devices(self, group: str | None = None) -> list[Device]:
        """Devices and what they last reported."""
        return self.store.devices(group)

    # telemetry ---------------------------------------------------------------------------

    def ingest(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Take one uploaded batch into the prediction log (once, however often sent)."""
        try:
            device = str(payload["device"])
            group = str(payload["group"])
            last_seq = int(payload["last_seq"])
            dropped = int(payload.get("dropped") or 0)
            records = payload["records"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"a telemetry batch needs device, group, last_seq and records: {exc}"
            ) from None
        _check_group(group)
        _check_device(device)
        if not isinstance(records, list) or len(records) > MAX_BATCH_RECORDS:
            raise InvalidInputError(f"records must be a list of at most {MAX_BATCH_RECORDS}")
        parsed = [_record(device, group, last_seq, i, r) for i, r in enumerate(records)]
        rows = sum(p.rows for p in parsed)
        if not self.store.accept_telemetry(
            device, group, last_seq, rows, max(dropped, 0), now_ms()
        ):
            return {"accepted": 0, "duplicate": True, "last_seq": last_seq}
        sink = self._sink_now()
        for record in parsed:
            sink.submit(record)
        return {"accepted": rows, "duplicate": False, "last_seq": last_seq}

    def _sink_now(self) -> PredictionSink:
        if self._sink is None:
            if self._make_sink is None:
                raise InvalidInputError("this store keeps no prediction log for telemetry")
            self._sink = self._make_sink()
        return self._sink

    def close(self) -> None:
        """Write queued telemetry and release the log's files."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    # helpers -----------------------------------------------------------------------------

    def _atomic(self) -> Any:
        from contextlib import nullcontext

        return self.audit.atomic() if self.audit is not None else nullcontext()

    def _audit(self, action: str, obj: str, payload: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.record(action, obj, payload)

    def _edges(self, edges: list[tuple[str, str, str]]) -> None:
        if self.lineage is not None:
            self.lineage.add_edges(edges)


def _check_group(group: str) -> None:
    from shipyard.edge.keys import NAME

    if not NAME.match(group):
        raise InvalidInputError(
            f"a device group is letters, digits, '.', '_' or '-' (at most 64); got {group!r}"
        )


def _check_device(device: str) -> None:
    if not device or len(device) > 100 or any(c in device for c in "/\\\x00"):
        raise InvalidInputError("a device id is 1-100 characters without slashes")


def _check_percent(percent: int) -> None:
    if not 0 <= percent <= 100:
        raise InvalidInputError(f"percent must be between 0 and 100; got {percent}")


def _column(values: Any, n: int, name: str) -> np.ndarray[Any, Any]:
    if not isinstance(values, list) or len(values) != n:
        raise InvalidInputError(f"telemetry column {name} must be a list of {n} values")
    if not all(v is None or isinstance(v, str | int | float | bool) for v in values):
        raise InvalidInputError(f"telemetry column {name} holds values that are not scalars")
    if values and all(isinstance(v, bool) for v in values):  # as the model server logs them
        return np.array(values, dtype=bool)
    if all((isinstance(v, int | float) and not isinstance(v, bool)) or v is None for v in values):
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _record(device: str, group: str, last_seq: int, i: int, body: Any) -> PredictionRecord:
    if not isinstance(body, dict):
        raise InvalidInputError("each telemetry record is an object")
    try:
        inputs_raw = body["inputs"]
        outputs_raw = body["outputs"]
        n = len(outputs_raw["predict"])
        ts = int(body["ts_ms"])
        latency = float(body.get("latency_seconds") or 0.0)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"a telemetry record needs ts_ms, inputs and outputs: {exc}"
        ) from None
    if not isinstance(inputs_raw, dict) or not isinstance(outputs_raw, dict) or n == 0:
        raise InvalidInputError("a telemetry record's inputs and outputs are columns of rows")
    inputs = {str(k): _column(v, n, str(k)) for k, v in inputs_raw.items()}
    outputs: dict[str, Any] = {"predict": _column(outputs_raw["predict"], n, "predict")}
    proba = outputs_raw.get("predict_proba")
    if proba is not None:
        try:
            matrix = np.asarray(proba, dtype="float64")
        except (TypeError, ValueError):
            raise InvalidInputError("predict_proba must be rows of numbers") from None
        if matrix.ndim != 2 or len(matrix) != n:
            raise InvalidInputError(f"predict_proba must be {n} rows of class probabilities")
        outputs["predict_proba"] = matrix
    return PredictionRecord(
        deployment=deployment_of(group),
        model=str(body.get("model") or "unknown"),
        version=str(body.get("version") or ""),
        role=f"device:{device}",
        request_id=f"{device}-{last_seq}-{i}",
        timestamp_ms=ts,
        latency_seconds=latency,
        inputs=inputs,
        outputs=row_outputs(outputs),
        rows=n,
    )
