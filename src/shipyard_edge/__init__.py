"""Shipyard's edge runtime: verify a signed bundle, predict with ONNX Runtime, keep
telemetry on disk while offline and upload it under a bandwidth cap.

Installable on its own (``pip install shipyard-edge``, or ``shipyard[edge-runtime]`` beside
the platform): it needs ONNX Runtime, NumPy and ``cryptography`` (for the Ed25519 check),
never SQLAlchemy, FastAPI, pandas or the rest of the platform.
"""

from shipyard_edge.bundle import Bundle, BundleError, load_public_keys, verify
from shipyard_edge.model import EdgeModel, Prediction
from shipyard_edge.sync import Platform, PlatformUnreachableError, SyncResult
from shipyard_edge.telemetry import TelemetryBuffer

__version__ = "0.1.0"

__all__ = [
    "Bundle",
    "BundleError",
    "EdgeModel",
    "Platform",
    "PlatformUnreachableError",
    "Prediction",
    "SyncResult",
    "TelemetryBuffer",
    "load_public_keys",
    "verify",
]
