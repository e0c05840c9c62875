"""ONNX models: the protobuf with its weights inline (external data is refused), run by
ONNX Runtime. Also the converted copy that other flavours carry beside their native file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError, StoreError
from shipyard.core.hashing import sha256_file
from shipyard.core.skops_trust import UnsafeModelError
from shipyard.registry.flavors._base import (
    FlavorKind,
    confined,
    is_from,
    model_file,
    package_version,
    require_extra,
)


def onnx_conf(path: Path) -> dict[str, Any]:
    """The description of an ONNX file: hash, opsets, runtime version."""
    onnx = require_extra("onnx", "onnx")
    proto = onnx.load(str(path))
    digest, _ = sha256_file(path)
    return {
        "model_file": path.name,
        "sha256": digest,
        "onnx_version": package_version("onnx"),
        "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import},
        "inputs": [i.name for i in proto.graph.input],
        "outputs": [o.name for o in proto.graph.output],
    }


def check_onnx_file(path: Path) -> None:
    """Refuse ONNX files whose tensors live in external files (a path to read elsewhere).

    Raises:
        UnsafeModelError: a tensor of the graph (or a subgraph) names external data.
    """
    onnx = require_extra("onnx", "onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises anything on a foreign file; each becomes bad input
        raise InvalidInputError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    external = onnx.TensorProto.EXTERNAL
    pending = [proto.graph]
    while pending:
        graph = pending.pop()
        tensors = list(graph.initializer) + [
            a.t for node in graph.node for a in node.attribute if a.HasField("t")
        ]
        if any(t.data_location == external for t in tensors):
            raise UnsafeModelError(
                f"{path.name} keeps tensors in external files; Shipyard stores ONNX models "
                "with their weights inline and refuses external data"
            )
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    pending.append(attr.g)
                pending.extend(attr.graphs)


class OnnxModel:
    """An ONNX Runtime session over a tabular model with one float input ``[n, features]``."""

    def __init__(self, path: Path, conf: dict[str, Any]) -> None:
        ort = require_extra("onnxruntime", "onnx")
        digest, _ = sha256_file(path)
        if conf.get("sha256") and digest != conf["sha256"]:
            raise StoreError(
                f"{path.name} does not match the hash recorded at registration; refusing to load"
            )
        check_onnx_file(path)
        options = ort.SessionOptions()
        # One thread per request: serving runs many requests at once, each tiny.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # converters declare loose shapes; warnings are noise
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.input_type = self.session.get_inputs()[0].type
        outputs = [o.name for o in self.session.get_outputs()]
        self.label_output = outputs[0]
        self.proba_output = next((o for o in outputs if "prob" in o.lower()), None)

    def _feed(self, X: Any) -> dict[str, np.ndarray[Any, Any]]:
        dtype = np.float64 if "double" in self.input_type else np.float32
        return {self.input_name: np.ascontiguousarray(np.asarray(X, dtype=dtype))}

    def run(self, X: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
        """Labels (or values) and, for classifiers, probabilities, in one session run."""
        names = [self.label_output] + ([self.proba_output] if self.proba_output else [])
        result = self.session.run(names, self._feed(X))
        label = np.asarray(result[0])
        if label.ndim == 2 and label.shape[1] == 1:
            label = label.reshape(-1)
        return label, (np.asarray(result[1]) if self.proba_output else None)

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Labels or values."""
        return self.run(X)[0]

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities."""
        proba = self.run(X)[1]
        if proba is None:
            raise InvalidInputError("this ONNX model has no probability output")
        return proba


def _save(model: Any, folder: Path) -> dict[str, Any]:
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return onnx_conf(path)


def _check(conf: dict[str, Any], folder: Path) -> dict[str, Any]:
    check_onnx_file(confined(folder, model_file(conf)))
    return {}


FLAVOR = FlavorKind(
    name="onnx",
    priority=0,
    detect=lambda model: is_from(model, "onnx") and type(model).__name__ == "ModelProto",
    save=_save,
    load=lambda conf, folder, trusted: OnnxModel(confined(folder, model_file(conf)), conf),
    check=_check,
    mlflow_loader="mlflow.onnx",
    mlflow_keys=lambda conf: {
        "data": conf["model_file"],
        "providers": ["CPUExecutionProvider"],
        "onnx_session_options": None,
        "code": None,
    },
    needs=("numpy", "pandas", "onnx", "onnxruntime"),
)
