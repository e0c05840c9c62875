"""The demo's training pipeline: generate -> validate -> split -> train two candidates ->
evaluate. Steps are module-level so every executor can import them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import shipyard
from shipyard import pipeline, step
from shipyard.demo.data import (
    AGE_BANDS,
    COUNTRIES,
    FEATURES,
    LABEL,
    MERCHANTS,
    SENSITIVE,
    make_transactions,
    recent_transactions,
)

SCHEMA = pa.DataFrameSchema(
    {
        "amount": pa.Column(float, pa.Check.ge(0)),
        "merchant_category": pa.Column("category", pa.Check.isin(MERCHANTS)),
        "hour": pa.Column(int, pa.Check.in_range(0, 23)),
        "country": pa.Column("category", pa.Check.isin(COUNTRIES)),
        "age_band": pa.Column("category", pa.Check.isin(AGE_BANDS)),
        "card_present": pa.Column(bool),
        LABEL: pa.Column(int, pa.Check.isin([0, 1])),
    },
    strict=True,
)


@step
def generate(rows: int, seed: int) -> pd.DataFrame:
    """A seeded synthetic card-fraud data set."""
    return make_transactions(rows, seed)


@step
def validate(data: pd.DataFrame) -> pd.DataFrame:
    """Check the schema (every failing column at once) and a plausible fraud rate."""
    checked = SCHEMA.validate(data, lazy=True)
    rate = float(checked[LABEL].mean())
    shipyard.log_metric("fraud_rate", rate)
    if not 0.001 <= rate <= 0.1:
        raise ValueError(f"fraud rate {rate:.4f} is outside the plausible 0.1%-10%")
    return checked


@step
def split(data: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified 75/25 split."""
    train, test = train_test_split(data, test_size=0.25, random_state=seed, stratify=data[LABEL])
    return train, test


@step
def train_logistic(train: pd.DataFrame) -> BaseEstimator:
    """One-hot categories, log-scaled numbers, class-weighted logistic regression."""
    categorical = ["merchant_category", "country", "age_band"]
    numeric = ["amount", "hour", "card_present"]
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
            (
                "num",
                Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler())]),
                numeric,
            ),
        ]
    )
    model = Pipeline(
        [
            ("prep", prep),
            ("model", LogisticRegression(max_iter=500, C=0.5, class_weight="balanced")),
        ]
    )
    return model.fit(train[FEATURES], train[LABEL])


def boosting_model(seed: int) -> HistGradientBoostingClassifier:
    """The demo's fraud model, unfitted: histogram gradient boosting with native categorical
    support and early stopping (the edge benchmark exports the same model)."""
    return HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.08,
        max_leaf_nodes=31,
        categorical_features="from_dtype",
        early_stopping=True,
        scoring="loss",
        validation_fraction=0.15,
        random_state=seed,
    )


@step
def train_boosting(train: pd.DataFrame, seed: int) -> BaseEstimator:
    """Histogram gradient boosting with native categorical support and early stopping."""
    model = boosting_model(seed)
    shipyard.log_params(
        {k: model.get_params()[k] for k in ("max_iter", "learning_rate", "max_leaf_nodes")}
        | {"rows": len(train), "seed": seed}
    )
    model.fit(train[FEATURES], train[LABEL])
    for i, value in enumerate(model.validation_score_):
        shipyard.log_metric("curve_valid_log_loss", -float(value), step=i)
    return model


@step
def evaluate(model: BaseEstimator, test: pd.DataFrame, name: str) -> dict[str, Any]:
    """Holdout metrics, and the flag rate per age band at a 2% alert budget."""
    proba = model.predict_proba(test[FEATURES])[:, 1]
    flagged = (proba >= float(np.quantile(proba, 0.98))).astype(int)
    metrics = {
        "val_roc_auc": float(roc_auc_score(test[LABEL], proba)),
        "val_pr_auc": float(average_precision_score(test[LABEL], proba)),
        "val_recall_at_2pct": float(recall_score(test[LABEL], flagged)),
    }
    for band in AGE_BANDS:
        mask = (test[SENSITIVE] == band).to_numpy()
        metrics[f"val_flag_rate.{band.replace('+', 'plus')}"] = float(flagged[mask].mean())
    shipyard.log_metrics(metrics)
    return {"name": name, **metrics}


@pipeline
def fraud_training(rows: int = 50_000, seed: int = 7) -> tuple[Any, Any]:
    """Train and evaluate two fraud candidates on fresh synthetic data."""
    data = validate(generate(rows, seed))
    train, test = split(data, seed)
    linear = evaluate(train_logistic(train), test, "logistic_regression")
    boosted = evaluate(train_boosting(train, seed), test, "gradient_boosting")
    return linear, boosted


@step
def generate_recent(rows: int, seed: int, shift: float) -> pd.DataFrame:
    """Fresh synthetic transactions that look like today's traffic."""
    return recent_transactions(rows, seed, shift)


@pipeline
def fraud_retraining(rows: int = 50_000, seed: int = 17, shift: float = 1.2) -> tuple[Any, Any]:
    """Retrain both candidates on data like the recent (shifted) traffic."""
    data = validate(generate_recent(rows, seed, shift))
    train, test = split(data, seed)
    linear = evaluate(train_logistic(train), test, "logistic_regression")
    boosted = evaluate(train_boosting(train, seed), test, "gradient_boosting")
    return linear, boosted
