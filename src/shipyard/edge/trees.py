"""scikit-learn's histogram gradient boosting to ONNX, categorical splits included.

skl2onnx 1.20 converts a HistGradientBoosting model with native categorical features
without complaint and predicts wrong (probabilities off by 0.21 on the demo's fraud model):
it writes a category split as a threshold. Here each tree goes to ONNX-ML's ``TreeEnsemble``
(ai.onnx.ml opset 5), whose ``BRANCH_MEMBER`` nodes test set membership as scikit-learn's
bitsets do, with missing values (and unknown categories, encoded as missing) following
the learned direction. The graph then adds the baseline and applies the loss's link, so
its outputs equal ``predict_proba`` / ``predict``.

Two knobs make smaller variants: ``iterations`` keeps the first boosting iterations only,
and ``precision="float32"`` stores thresholds and leaf values in 4 bytes instead of 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from shipyard.core.errors import InvalidInputError

#: TreeEnsemble (ai.onnx.ml 5) came with ONNX opset 21.
MIN_OPSET = 21
_LEQ, _MEMBER = 0, 6
Precision = Literal["float64", "float32"]


@dataclass(frozen=True)
class TreeInput:
    """How a row becomes the model's input: columns in order, categories as level codes."""

    columns: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        """Column names in input order."""
        return [c["name"] for c in self.columns]


def is_hist_gradient_boosting(model: Any) -> bool:
    """Whether ``model`` is a fitted HistGradientBoosting classifier or regressor."""
    return type(model).__name__ in (
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ) and hasattr(model, "_predictors")


def input_of(model: Any, names: list[str]) -> TreeInput:
    """The input columns of ``model`` (native order), with each category column's levels."""
    categorical = _categorical_mask(model, len(names))
    levels: dict[int, list[Any]] = {}
    if model._preprocessor is not None:
        encoder = model._preprocessor.named_transformers_["encoder"]
        for original, cats in zip(np.flatnonzero(categorical), encoder.categories_, strict=True):
            values = [c for c in cats.tolist() if not (isinstance(c, float) and np.isnan(c))]
            levels[int(original)] = values
    columns = []
    for i, name in enumerate(names):
        if i in levels:
            columns.append({"name": name, "kind": "category", "levels": levels[i]})
        else:
            columns.append({"name": name, "kind": "number"})
    return TreeInput(columns)


def _categorical_mask(model: Any, n: int) -> np.ndarray[Any, Any]:
    mask = getattr(model, "is_categorical_", None)
    if mask is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(mask, dtype=bool)


def iterations_of(model: Any) -> int:
    """Boosting iterations the model has."""
    return len(model._predictors)


def to_onnx(
    model: Any,
    n_features: int,
    *,
    iterations: int | None = None,
    precision: Precision = "float64",
    opset: int = MIN_OPSET,
) -> Any:
    """The ONNX ``ModelProto`` of a fitted HistGradientBoosting model.

    Raises:
        InvalidInputError: the target's opset is too old, or the loss has no link here.
    """
    from onnx import TensorProto, helper, numpy_helper

    if opset < MIN_OPSET:
        raise InvalidInputError(
            f"TreeEnsemble with categorical splits needs ONNX opset {MIN_OPSET}; "
            f"the target allows {opset}"
        )
    dtype = np.float64 if precision == "float64" else np.float32
    onnx_type = TensorProto.DOUBLE if precision == "float64" else TensorProto.FLOAT
    predictors = model._predictors[: iterations or None]
    k = model.n_trees_per_iteration_
    order = _feature_order(model, n_features)
    arrays = _tree_arrays(predictors, order)

    ensemble = helper.make_node(
        "TreeEnsemble",
        ["input"],
        ["raw"],
        domain="ai.onnx.ml",
        n_targets=k,
        aggregate_function=1,  # SUM
        post_transform=0,  # NONE: the link is applied after the baseline is added
        tree_roots=arrays["roots"],
        nodes_modes=numpy_helper.from_array(np.asarray(arrays["modes"], dtype=np.uint8)),
        nodes_featureids=arrays["features"],
        nodes_splits=numpy_helper.from_array(np.asarray(arrays["splits"], dtype=dtype)),
        nodes_truenodeids=arrays["true_ids"],
        nodes_trueleafs=arrays["true_leaf"],
        nodes_falsenodeids=arrays["false_ids"],
        nodes_falseleafs=arrays["false_leaf"],
        nodes_missing_value_tracks_true=arrays["missing_true"],
        leaf_targetids=arrays["leaf_targets"],
        leaf_weights=numpy_helper.from_array(np.asarray(arrays["leaf_values"], dtype=dtype)),
        **(
            {"membership_values": numpy_helper.from_array(np.asarray(arrays["members"], dtype))}
            if arrays["members"]
            else {}
        ),
    )
    baseline = np.asarray(model._baseline_prediction, dtype=dtype).reshape(1, k)
    initializers = [numpy_helper.from_array(baseline, "baseline")]
    nodes = [ensemble, helper.make_node("Add", ["raw", "baseline"], ["score"])]
    link = type(model._loss.link).__name__
    outputs: list[Any]
    if hasattr(model, "classes_"):
        classes = np.asarray(model.classes_)
        if classes.dtype.kind in "iub":
            class_tensor = numpy_helper.from_array(classes.astype(np.int64), "classes")
            label_type = TensorProto.INT64
        else:
            names = np.array([str(c) for c in classes], dtype=object)
            class_tensor = numpy_helper.from_array(names, "classes")
            label_type = TensorProto.STRING
        initializers.append(class_tensor)
        if k == 1:
            initializers.append(numpy_helper.from_array(np.ones((1, 1), dtype), "one"))
            nodes += [
                helper.make_node("Sigmoid", ["score"], ["positive"]),
                helper.make_node("Sub", ["one", "positive"], ["negative"]),
                helper.make_node("Concat", ["negative", "positive"], ["probabilities"], axis=1),
            ]
        else:
            nodes.append(helper.make_node("Softmax", ["score"], ["probabilities"], axis=1))
        nodes += [
            helper.make_node("ArgMax", ["probabilities"], ["index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "index"], ["label"], axis=0),
        ]
        outputs = [
            helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", onnx_type, [None, len(classes)]),
        ]
    else:
        if link == "IdentityLink":
            nodes.append(helper.make_node("Identity", ["score"], ["variable"]))
        elif link == "LogLink":
            nodes.append(helper.make_node("Exp", ["score"], ["variable"]))
        else:
            raise InvalidInputError(f"the {link} of this model's loss is not converted")
        outputs = [helper.make_tensor_value_info("variable", onnx_type, [None, 1])]
    graph = helper.make_graph(
        nodes,
        "shipyard_hist_gradient_boosting",
        [helper.make_tensor_value_info("input", onnx_type, [None, n_features])],
        outputs,
        initializer=initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", 5)],
        producer_name="shipyard",
    )
    proto.ir_version = 10  # ONNX Runtime 1.17 and newer read it
    return proto


def _feature_order(model: Any, n_features: int) -> np.ndarray[Any, Any]:
    """Input column of each feature index the trees use: scikit-learn's preprocessor puts
    the categorical columns first, then the numeric ones."""
    if model._preprocessor is None:
        return np.arange(n_features)
    mask = _categorical_mask(model, n_features)
    return np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])


def _tree_arrays(predictors: list[list[Any]], order: np.ndarray[Any, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        key: []
        for key in (
            "roots",
            "modes",
            "features",
            "splits",
            "true_ids",
            "true_leaf",
            "false_ids",
            "false_leaf",
            "missing_true",
            "leaf_targets",
            "leaf_values",
            "members",
        )
    }
    for per_iteration in predictors:
        for target, predictor in enumerate(per_iteration):
            _add_tree(out, predictor, target, order)
    return out


def _add_tree(
    out: dict[str, list[Any]], predictor: Any, target: int, order: np.ndarray[Any, Any]
) -> None:
    nodes = predictor.nodes
    internal: dict[int, int] = {}
    leaves: dict[int, int] = {}
    for i in range(len(nodes)):
        if nodes[i]["is_leaf"]:
            leaves[i] = len(out["leaf_values"])
            out["leaf_values"].append(float(nodes[i]["value"]))
            out["leaf_targets"].append(target)
        else:
            internal[i] = len(out["modes"]) + len(internal)
    if not internal:  # a single-leaf tree: one test whose both branches reach the leaf
        leaf = leaves[0]
        out["roots"].append(len(out["modes"]))
        _node(out, _LEQ, 0, 0.0, (leaf, 1), (leaf, 1), True)
        return
    out["roots"].append(internal[0])
    bitsets = predictor.raw_left_cat_bitsets
    for i in sorted(internal, key=internal.__getitem__):
        node = nodes[i]
        left, right = int(node["left"]), int(node["right"])
        true = (leaves[left], 1) if left in leaves else (internal[left], 0)
        false = (leaves[right], 1) if right in leaves else (internal[right], 0)
        feature = int(order[int(node["feature_idx"])])
        missing_left = bool(node["missing_go_to_left"])
        if node["is_categorical"]:
            members = _bits(bitsets[int(node["bitset_idx"])])
            if out["members"]:
                out["members"].append(np.nan)
            out["members"].extend(float(m) for m in members)
            _node(out, _MEMBER, feature, np.nan, true, false, missing_left)
        else:
            _node(out, _LEQ, feature, float(node["num_threshold"]), true, false, missing_left)


def _node(
    out: dict[str, list[Any]],
    mode: int,
    feature: int,
    split: float,
    true: tuple[int, int],
    false: tuple[int, int],
    missing_true: bool,
) -> None:
    out["modes"].append(mode)
    out["features"].append(feature)
    out["splits"].append(split)
    out["true_ids"].append(true[0])
    out["true_leaf"].append(true[1])
    out["false_ids"].append(false[0])
    out["false_leaf"].append(false[1])
    out["missing_true"].append(int(missing_true))


def _bits(bitset: np.ndarray[Any, Any]) -> list[int]:
    """The values set in one of scikit-learn's 256-bit bitsets (8 uint32 words)."""
    words = np.asarray(bitset, dtype=np.uint32)
    return [w * 32 + b for w in range(len(words)) for b in range(32) if (int(words[w]) >> b) & 1]
