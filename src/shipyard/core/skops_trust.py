"""Which types a skops file may build, decided from the file and a fixed allow-list.

A skops file is a tree of nodes; loading it imports each named type and may call it
(``ConstructorFromReduceNode``), so a crafted file can build ``os.system`` or
``builtins.exec``. skops itself trusts scikit-learn estimators and primitives and reports
every other type as untrusted. What we trust on top is never read from a package or a
record someone could edit: it is computed from the file itself and each type must pass
:func:`is_safe_type`: a class (or a NumPy/SciPy ufunc) defined in scikit-learn, NumPy or
SciPy, outside the modules that touch files, processes, the network or raw memory.
Functions, methods and anything else are refused: a function named in a reduce node is
called with arguments from the file.

After loading, :func:`check_tree_bounds` rejects tree ensembles whose node arrays point
outside themselves (scikit-learn indexes them without bounds checks, so a crafted array
reads arbitrary memory or crashes the process at the first prediction).
"""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError

#: Top-level packages whose classes may be built from a model file.
ALLOWED_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
#: Plain types outside those packages that estimators hold and that do nothing when built.
ALLOWED_EXACT = frozenset(
    {
        "builtins.slice",
        "builtins.complex",
        "builtins.frozenset",
        "builtins.range",
        "builtins.bytes",
        "builtins.bytearray",
        "collections.OrderedDict",
        # A partial only binds arguments; its function is a node of its own, checked too.
        "functools.partial",
        # Functions scikit-learn itself stores in fitted estimators (HistGradientBoosting's
        # categorical preprocessing), which validate arrays and do nothing else.
        "sklearn.utils.validation.check_array",
    }
)
# Modules (any dotted segment) whose classes read or write files, load pickles, reach the
# network, wrap raw pointers or exist for tests; and names that map files into memory.
_DENIED_SEGMENT = re.compile(
    r"(^|\.)(tests?|_testing|testing|conftest|io|_io|f2py|distutils|ctypeslib|_datasource|"
    r"npyio|_npyio_impl|format|datasets|externals|_lib|parallel|_joblib)(\.|$)"
)
_DENIED_NAME = re.compile(r"memmap|datasource|lowlevelcallable|file", re.IGNORECASE)


class UnsafeModelError(InvalidInputError):
    """A model file asks to build a type that is not on the allow-list."""


def _resolve(name: str) -> Any:
    """Import the object a dotted name refers to, importing only allowed packages."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(name)


def is_safe_type(name: str) -> bool:
    """Whether a type named in a skops file may be trusted (see the module docstring)."""
    if name in ALLOWED_EXACT:
        return True
    top = name.split(".", 1)[0]
    if top not in ALLOWED_PACKAGES or _DENIED_SEGMENT.search(name) or _DENIED_NAME.search(name):
        return False
    try:
        obj = _resolve(name)
    except (LookupError, AttributeError, ImportError, ValueError):
        return False
    import numpy as np

    if isinstance(obj, np.ufunc) or type(obj).__name__ == "ufunc":
        return True
    if not isinstance(obj, type):
        return False
    module = getattr(obj, "__module__", "") or ""
    if module.split(".", 1)[0] not in ALLOWED_PACKAGES or _DENIED_SEGMENT.search(module):
        return False
    return not issubclass(obj, np.memmap | io.IOBase) and not _DENIED_NAME.search(obj.__qualname__)


def trusted_types(path: Path | str) -> list[str]:
    """The types skops reports untrusted in this file, if every one is safe to build.

    Raises:
        UnsafeModelError: the file names a type outside the allow-list.
        InvalidInputError: the file is not a readable skops archive.
    """
    import skops.io as sio

    try:
        found = sorted(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises anything on a foreign file; each becomes bad input
        raise InvalidInputError(
            f"{Path(path).name} is not a readable skops file: {type(exc).__name__}: {exc}"
        ) from exc
    refused = [t for t in found if not is_safe_type(t)]
    if refused:
        raise UnsafeModelError(
            f"{Path(path).name} builds types Shipyard never trusts in a model file: "
            f"{', '.join(refused[:10])}; only scikit-learn, NumPy and SciPy classes may be "
            "stored with skops",
            refused=", ".join(refused),
        )
    return found


def load_skops(path: Path | str) -> Any:
    """Load a skops file trusting only allow-listed types computed from the file itself."""
    import skops.io as sio

    types = trusted_types(path)
    try:
        model = sio.load(path, trusted=types)
    except Exception as exc:  # skops raises anything on a foreign file; each becomes bad input
        raise InvalidInputError(
            f"{Path(path).name} could not be loaded with skops: {type(exc).__name__}: {exc}"
        ) from exc
    check_tree_bounds(model)
    return model


def _walk(obj: Any, seen: set[int], depth: int = 0) -> Any:
    """Yield every object reachable through estimator attributes, lists, tuples and dicts."""
    if id(obj) in seen or depth > 50:
        return
    seen.add(id(obj))
    yield obj
    children: list[Any] = []
    if isinstance(obj, list | tuple):
        children = list(obj)
    elif isinstance(obj, dict):
        children = list(obj.values())
    elif type(obj).__module__.split(".", 1)[0] == "sklearn" and hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        import numpy as np

        if isinstance(obj, np.ndarray) and obj.dtype == object:
            children = list(obj.ravel())
    for child in children:
        yield from _walk(child, seen, depth + 1)


def _refuse(what: str) -> UnsafeModelError:
    return UnsafeModelError(
        f"a {what} in this model file has node indices outside its arrays; refusing to load it"
    )


def _check_tree(tree: Any) -> None:
    state = tree.__getstate__()
    nodes, count = state["nodes"], int(state["node_count"])
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    inner = left != -1
    ok = (
        len(nodes) == count
        and len(state["values"]) == count
        and bool((right[~inner] == -1).all())
        and all(bool(((a[inner] > 0) & (a[inner] < count)).all()) for a in (left, right))
        and bool(((feature[inner] >= 0) & (feature[inner] < int(tree.n_features))).all())
    )
    if not ok:
        raise _refuse("decision tree")


def _check_predictor(predictor: Any, n_features: int) -> None:
    nodes = predictor.nodes
    size = len(nodes)
    inner = nodes["is_leaf"] == 0
    categorical = inner & (nodes["is_categorical"] == 1)
    bitsets = len(getattr(predictor, "raw_left_cat_bitsets", ()))
    ok = (
        all(
            bool(((nodes[k][inner] > 0) & (nodes[k][inner] < size)).all())
            for k in ("left", "right")
        )
        and bool(
            ((nodes["feature_idx"][inner] >= 0) & (nodes["feature_idx"][inner] < n_features)).all()
        )
        and bool((nodes["bitset_idx"][categorical] < bitsets).all())
    )
    if not ok:
        raise _refuse("gradient-boosting tree")


def check_tree_bounds(model: Any) -> None:
    """Refuse trees whose child or feature indices fall outside their arrays.

    Raises:
        UnsafeModelError: a ``Tree`` or a ``TreePredictor`` points outside its arrays.
    """
    for obj in _walk(model, set()):
        if type(obj).__name__ == "Tree" and type(obj).__module__ == "sklearn.tree._tree":
            _check_tree(obj)
        predictors = getattr(obj, "_predictors", None)
        if isinstance(predictors, list) and hasattr(obj, "n_features_in_"):
            for group in predictors:
                for predictor in group:
                    _check_predictor(predictor, int(obj.n_features_in_))
