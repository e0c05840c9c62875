from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.names import check_key, check_metric_value, check_name, check_step
from shipyard.core.paths import check_artifact_name, confined


@pytest.mark.parametrize(
    "key", ["auc", "val/auc", "précision", "loss:train", "a b", "x" * 250, "layer.0.weight"]
)
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key", ["", "x" * 251, "/lead", "a/../b", "..", "tab\tkey", "semi;colon", "quote'", 7]
)
def test_invalid_keys_name_the_rule(key: object) -> None:
    with pytest.raises(InvalidInputError, match="key"):
        check_key(key)


def test_names_allow_unicode_but_not_control_characters() -> None:
    assert check_name("détection fraude 🚨") == "détection fraude 🚨"
    for bad in ("", "   ", "line\nbreak", "x" * 300):
        with pytest.raises(InvalidInputError):
            check_name(bad)


def test_metric_values_keep_non_finite_and_refuse_strings() -> None:
    assert math.isnan(check_metric_value(float("nan"), "k"))
    assert check_metric_value(float("inf"), "k") == math.inf
    assert check_metric_value(3, "k") == 3.0
    import numpy as np

    assert check_metric_value(np.float32(0.5), "k") == 0.5
    for bad in ("0.5", None, True, [1]):
        with pytest.raises(InvalidInputError):
            check_metric_value(bad, "k")


def test_steps_are_non_negative_integers() -> None:
    assert check_step(3) == 3
    for bad in (-1, 1.5, "2", 2**63):
        with pytest.raises(InvalidInputError):
            check_step(bad)


@pytest.mark.parametrize(
    "name",
    [
        "model.skops",
        "eval/report.json",
        "a/b/c.parquet",
        "naïve résumé.txt",
        "100%.txt",  # a percent sign that decodes to nothing
        "dates/2026%2F12",  # decodes to a deeper path, still inside
        "..;/x",  # only Tomcat reads '..;' as '..'; here it is a name
    ],
)
def test_valid_artifact_names(name: str) -> None:
    assert check_artifact_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "~/x",
        "a//b",
        "./a",
        "a/.",
        "nul\x00",
        "a\\..\\b",
        "C:x",
        "x" * 1025,
        " lead",
        "%2e%2e%2fx",  # ../ once percent-decoded
        "%252e%252e%252fx",  # ... twice
        "a/%2e%2e/%2e%2e/x",
        "..%5cx",  # ..\ once decoded
        "%2fetc%2fpasswd",
        "\uff0e\uff0e\uff0fx",  # fullwidth ../, which NFKC turns into ../
        "x\ufffd",  # what a server decodes overlong UTF-8 (%c0%ae) into
    ],
)
def test_artifact_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError):
        check_artifact_name(name)


def test_confined_refuses_links_that_escape(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, root / "link")
    assert confined(root, "a/b") == (root / "a/b").resolve()
    with pytest.raises(InvalidInputError, match="escapes"):
        confined(root, "link/file")
