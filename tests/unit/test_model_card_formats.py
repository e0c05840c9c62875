"""Model cards export as valid Model Card Toolkit 0.0.2 JSON and as Hugging Face front matter."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from shipyard.registry.card import edit_card, new_card, to_markdown, to_mct

SCHEMA = Path(__file__).parents[1] / "resources" / "model_card_toolkit_v0.0.2.schema.json"


def _card() -> dict[str, object]:
    card = new_card(
        name="fraud",
        version=3,
        description="Card-fraud scorer",
        flavor="sklearn",
        model_class="sklearn.ensemble.HistGradientBoostingClassifier",
        signature={"inputs": json.dumps([{"name": "amount", "type": "double"}])},
        metrics={"val_roc_auc": 0.91, "val_recall": 0.4},
        lineage={"training_run": "run_01abc", "experiment": "exp_01xyz"},
        data_profile={"rows": 1000, "columns": {"amount": {"dtype": "float64", "nulls": 0}}},
        onnx={"max_abs_diff": 1e-6},
    )
    return edit_card(
        card,
        {
            "model_details.owners": ["ana", "risk-team"],
            "model_details.references": ["https://example.org/policy", "internal wiki"],
            "model_details.licenses": ["proprietary"],
            "considerations.limitations": ["Retail cards only"],
            "considerations.ethical_considerations": ["Age bands are monitored"],
        },
    )


def test_mct_export_is_valid_against_the_toolkits_schema() -> None:
    exported = to_mct(_card())
    jsonschema.validate(exported, json.loads(SCHEMA.read_text()))
    assert exported["schema_version"] == "0.0.2"
    assert exported["model_details"]["owners"] == [{"name": "ana"}, {"name": "risk-team"}]
    # Only URIs are references in MCT; metric values are strings there.
    assert exported["model_details"]["references"] == [{"reference": "https://example.org/policy"}]
    assert {"type": "val_roc_auc", "value": "0.91"} in exported["quantitative_analysis"][
        "performance_metrics"
    ]


def test_the_stored_card_does_not_claim_to_be_an_mct_document() -> None:
    card = _card()
    assert "schema_version" not in card and card["format"] == "shipyard.card/1"
    # What the stored card has beyond MCT fails its schema: hence the export.
    errors = list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(card))
    assert errors


def test_markdown_front_matter_has_hugging_faces_model_index() -> None:
    text = to_markdown(_card())
    front = yaml.safe_load(text.split("---")[1])
    result = front["model-index"][0]["results"][0]
    assert result["task"]["type"] and result["dataset"]["name"] and result["dataset"]["type"]
    assert {"type": "val_roc_auc", "value": 0.91, "name": "val_roc_auc"} in result["metrics"]
