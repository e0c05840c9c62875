"""Gradient-boosted trees to ONNX-ML's TreeEnsemble: scikit-learn's histogram boosting and
LightGBM, categorical splits included.

skl2onnx 1.20 converts a HistGradientBoosting model with native categorical features
without complaint and predicts wrong (probabilities off by 0.21 on the demo's fraud model):
it writes a category split as a threshold. Here each tree goes to ONNX-ML's ``TreeEnsemble``
(ai.onnx.ml opset 5), whose ``BRANCH_MEMBER`` nodes test set membership as scikit-learn's
bitsets do, with missing values (and unknown categories, encoded as missing) following
the learned direction. The graph then adds the baseline and applies the loss's link, so
its outputs equal ``predict_proba`` / ``predict``.

LightGBM goes the same way: onnxmltools writes each node's mode as a
string and ids as int64 lists under the older TreeEnsembleClassifier, 1.5 times smaller than
LightGBM's text format at best; the same trees as TreeEnsemble tensors are about 4 times
smaller. Missing values follow LightGBM's rules (``NaN``: the default direction; ``None``:
compared as 0); a tree using ``missing_type: Zero`` is refused, and the onnxmltools variant
stays.

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


def lightgbm_input(model: Any, names: list[str], frame: Any) -> TreeInput:
    """The input columns of a LightGBM model: pandas category columns (in the order LightGBM
    numbered them) carry the levels it was trained with."""
    import pandas as pd

    booster = getattr(model, "booster", None) or getattr(model, "booster_", None) or model
    levels = list(getattr(booster, "pandas_categorical", None) or [])
    categorical = [n for n in names if isinstance(frame[n].dtype, pd.CategoricalDtype)]
    if len(categorical) != len(levels):
        raise InvalidInputError(
            f"the held-out data has {len(categorical)} category column(s); the LightGBM model "
            f"was trained with {len(levels)}"
        )
    known = dict(zip(categorical, levels, strict=True))
    return TreeInput(
        [
            {"name": n, "kind": "category", "levels": list(known[n])}
            if n in known
            else {"name": n, "kind": "number"}
            for n in names
        ]
    )


def _categorical_mask(model: Any, n: int) -> np.ndarray[Any, Any]:
    mask = getattr(model, "is_categorical_", None)
    if mask is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(mask, dtype=bool)


def iterations_of(model: Any) -> int:
    """Boosting iterations the model has."""
    return len(model._predictors)


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise InvalidInputError(
            f"TreeEnsemble with categorical splits needs ONNX opset {MIN_OPSET}; "
            f"the target allows {opset}"
        )


def converts(model: Any, flavor: str) -> bool:
    """Whether this writer converts ``model`` (histogram boosting or LightGBM)."""
    return flavor == "lightgbm" or (flavor == "sklearn" and is_hist_gradient_boosting(model))


def to_onnx(
    model: Any,
    n_features: int,
    *,
    iterations: int | None = None,
    precision: Precision = "float64",
    opset: int = MIN_OPSET,
) -> Any:
    """The ONNX ``ModelProto`` of a fitted HistGradientBoosting model or LightGBM booster
    (or a model holding one), its first ``iterations`` only when given.

    Raises:
        InvalidInputError: the target's opset is too old, or a loss, objective or
            missing-value rule this writer does not cover.
    """
    _check_opset(opset)
    if is_hist_gradient_boosting(model):
        parts = _hist_gradient_boosting_parts(model, n_features, iterations)
    else:
        parts = _lightgbm_parts(model, iterations)
    return _ensemble_graph(*parts, n_features=n_features, precision=precision, opset=opset)


#: (tree arrays, targets per iteration, baseline, link, classes) of an ensemble.
_Parts = tuple[dict[str, list[Any]], int, np.ndarray[Any, Any], str, np.ndarray[Any, Any] | None]


def _hist_gradient_boosting_parts(model: Any, n_features: int, iterations: int | None) -> _Parts:
    k = model.n_trees_per_iteration_
    arrays = _tree_arrays(
        model._predictors[: iterations or None], _feature_order(model, n_features)
    )
    names = {
        "LogitLink": "sigmoid",
        "MultinomialLogit": "softmax",
        "IdentityLink": "identity",
        "LogLink": "exp",
    }
    link = type(model._loss.link).__name__
    if link not in names:
        raise InvalidInputError(f"the {link} of this model's loss is not converted")
    classes = np.asarray(model.classes_) if hasattr(model, "classes_") else None
    baseline = np.asarray(model._baseline_prediction, dtype="float64").reshape(k)
    return arrays, k, baseline, names[link], classes


def _lightgbm_parts(model: Any, iterations: int | None) -> _Parts:
    booster = getattr(model, "booster", None) or getattr(model, "booster_", None) or model
    dump = booster.dump_model(num_iteration=iterations)
    objective = str(dump.get("objective", "")).split()
    k = int(dump["num_tree_per_iteration"])
    if not objective:
        raise InvalidInputError("the LightGBM model names no objective")
    kind = objective[0]
    sigmoid = next((float(o.split(":")[1]) for o in objective if o.startswith("sigmoid:")), 1.0)
    if kind == "binary" and sigmoid == 1.0:
        link = "sigmoid"
    elif kind in ("multiclass", "softmax"):
        link = "softmax"
    elif kind in ("regression", "regression_l1", "huber", "fair", "quantile", "mape"):
        link = "identity"
    elif kind in ("poisson", "gamma", "tweedie"):
        link = "exp"
    else:
        raise InvalidInputError(f"LightGBM objective {' '.join(objective)} is not converted")
    if dump.get("average_output"):
        raise InvalidInputError("LightGBM random forest mode (average_output) is not converted")
    classes = getattr(model, "classes_", None)
    if link in ("sigmoid", "softmax") and classes is None:
        classes = np.arange(max(k, 2))
    arrays = _empty_arrays()
    for i, info in enumerate(dump["tree_info"]):
        _add_lightgbm_tree(arrays, info["tree_structure"], i % k)
    return arrays, k, np.zeros(k), link, None if classes is None else np.asarray(classes)


def _add_lightgbm_tree(out: dict[str, list[Any]], root: dict[str, Any], target: int) -> None:
    """One LightGBM tree, nodes numbered in pre-order (a parent before its children)."""
    if "leaf_value" in root:  # a tree that is one leaf
        leaf = len(out["leaf_values"])
        out["leaf_values"].append(float(root["leaf_value"]))
        out["leaf_targets"].append(target)
        out["roots"].append(len(out["modes"]))
        _node(out, _LEQ, 0, 0.0, (leaf, 1), (leaf, 1), True)
        return
    out["roots"].append(len(out["modes"]))
    pending: list[tuple[dict[str, Any], int]] = []
    index = _reserve(out)
    pending.append((root, index))
    while pending:
        node, at = pending.pop()
        branches = []
        for child in (node["left_child"], node["right_child"]):
            if "leaf_value" in child:
                branches.append((len(out["leaf_values"]), 1))
                out["leaf_values"].append(float(child["leaf_value"]))
                out["leaf_targets"].append(target)
            else:
                slot = _reserve(out)
                branches.append((slot, 0))
                pending.append((child, slot))
        _fill_lightgbm(out, at, node, branches[0], branches[1])


def _reserve(out: dict[str, list[Any]]) -> int:
    at = len(out["modes"])
    _node(out, _LEQ, 0, 0.0, (0, 1), (0, 1), False)
    return at


def _fill_lightgbm(
    out: dict[str, list[Any]],
    at: int,
    node: dict[str, Any],
    true: tuple[int, int],
    false: tuple[int, int],
) -> None:
    missing = str(node.get("missing_type", "None"))
    feature = int(node["split_feature"])
    if node["decision_type"] == "==":
        members = [float(v) for v in str(node["threshold"]).split("||")]
        out["modes"][at], out["splits"][at] = _MEMBER, np.nan
        out["member_sets"][at] = members
        tracks = False  # LightGBM sends a missing or negative category right
    else:
        threshold = float(node["threshold"])
        if missing == "Zero":
            raise InvalidInputError(
                "LightGBM trees treating zero as missing (zero_as_missing) are not converted"
            )
        out["modes"][at], out["splits"][at] = _LEQ, threshold
        tracks = bool(node["default_left"]) if missing == "NaN" else threshold >= 0.0
    out["features"][at] = feature
    out["true_ids"][at], out["true_leaf"][at] = true
    out["false_ids"][at], out["false_leaf"][at] = false
    out["missing_true"][at] = int(tracks)


def _ensemble_graph(
    arrays: dict[str, list[Any]],
    k: int,
    baseline: np.ndarray[Any, Any],
    link: str,
    classes: np.ndarray[Any, Any] | None,
    *,
    n_features: int,
    precision: Precision,
    opset: int,
) -> Any:
    """TreeEnsemble, plus the baseline and the link, with label and probabilities outputs
    for a classifier (as skl2onnx names them) or ``variable`` for a regressor."""
    from onnx import TensorProto, helper, numpy_helper

    dtype = np.float64 if precision == "float64" else np.float32
    onnx_type = TensorProto.DOUBLE if precision == "float64" else TensorProto.FLOAT
    members = _members(arrays)
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
            {"membership_values": numpy_helper.from_array(np.asarray(members, dtype))}
            if members
            else {}
        ),
    )
    initializers = [numpy_helper.from_array(baseline.astype(dtype).reshape(1, k), "baseline")]
    nodes = [ensemble, helper.make_node("Add", ["raw", "baseline"], ["score"])]
    outputs: list[Any]
    if classes is not None:
        if classes.dtype.kind in "iub":
            class_tensor = numpy_helper.from_array(classes.astype(np.int64), "classes")
            label_type = TensorProto.INT64
        else:
            names = np.array([str(c) for c in classes], dtype=object)
            class_tensor = numpy_helper.from_array(names, "classes")
            label_type = TensorProto.STRING
        initializers.append(class_tensor)
        if link == "sigmoid":
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
        op = {"identity": "Identity", "exp": "Exp"}[link]
        nodes.append(helper.make_node(op, ["score"], ["variable"]))
        outputs = [helper.make_tensor_value_info("variable", onnx_type, [None, 1])]
    graph = helper.make_graph(
        nodes,
        "shipyard_tree_ensemble",
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


def _members(arrays: dict[str, list[Any]]) -> list[float]:
    """``membership_values``: each BRANCH_MEMBER node's set in node order, NaN between."""
    out: list[float] = []
    for mode, found in zip(arrays["modes"], arrays["member_sets"], strict=True):
        if mode == _MEMBER:
            if out:
                out.append(np.nan)
            out.extend(found or [])
    return out


def _feature_order(model: Any, n_features: int) -> np.ndarray[Any, Any]:
    """Input column of each feature index the trees use: scikit-learn's preprocessor puts
    the categorical columns first, then the numeric ones."""
    if model._preprocessor is None:
        return np.arange(n_features)
    mask = _categorical_mask(model, n_features)
    return np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])


_ARRAYS = (
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
    "member_sets",
)


def _empty_arrays() -> dict[str, list[Any]]:
    return {key: [] for key in _ARRAYS}


def _tree_arrays(predictors: list[list[Any]], order: np.ndarray[Any, Any]) -> dict[str, list[Any]]:
    out = _empty_arrays()
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
            _node(
                out,
                _MEMBER,
                feature,
                np.nan,
                true,
                false,
                missing_left,
                [float(m) for m in members],
            )
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
    members: list[float] | None = None,
) -> None:
    out["modes"].append(mode)
    out["features"].append(feature)
    out["splits"].append(split)
    out["true_ids"].append(true[0])
    out["true_leaf"].append(true[1])
    out["false_ids"].append(false[0])
    out["false_leaf"].append(false[1])
    out["missing_true"].append(int(missing_true))
    out["member_sets"].append(members)


def _bits(bitset: np.ndarray[Any, Any]) -> list[int]:
    """The values set in one of scikit-learn's 256-bit bitsets (8 uint32 words)."""
    words = np.asarray(bitset, dtype=np.uint32)
    return [w * 32 + b for w in range(len(words)) for b in range(32) if (int(words[w]) >> b) & 1]
