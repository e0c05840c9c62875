"""A seeded, synthetic card-fraud data set with a realistic ~1.5% fraud rate.

Columns: amount (EUR, log-normal), merchant_category (10 levels), hour (0-23), country
(home or one of several foreign), age_band (the sensitive attribute fairness checks use),
card_present, and the label is_fraud. Fraud is likelier at night, abroad, for large
amounts, card-not-present, and in a few merchant categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MERCHANTS = (
    "grocery",
    "fuel",
    "restaurant",
    "travel",
    "electronics",
    "online_gaming",
    "fashion",
    "pharmacy",
    "utilities",
    "jewelry",
)
MERCHANT_RISK = np.array([-0.6, -0.4, -0.3, 0.5, 0.9, 1.2, 0.1, -0.5, -0.8, 1.0])
COUNTRIES = ("FR", "DE", "ES", "IT", "GB", "US", "NG", "BR")
COUNTRY_P = np.array([0.62, 0.1, 0.08, 0.07, 0.05, 0.04, 0.02, 0.02])
COUNTRY_RISK = np.array([-0.5, 0.0, 0.0, 0.0, 0.2, 0.6, 1.5, 1.1])
AGE_BANDS = ("18-29", "30-49", "50-64", "65+")
AGE_P = np.array([0.22, 0.4, 0.25, 0.13])
AGE_RISK = np.array([0.35, 0.0, 0.05, 0.45])
FEATURES = ["amount", "merchant_category", "hour", "country", "age_band", "card_present"]
LABEL = "is_fraud"
SENSITIVE = "age_band"


def make_transactions(rows: int, seed: int = 7, *, fraud_shift: float = 0.0) -> pd.DataFrame:
    """Return ``rows`` synthetic transactions; ``fraud_shift`` moves the fraud pattern."""
    rng = np.random.default_rng(seed)
    merchant = rng.integers(0, len(MERCHANTS), rows)
    country = rng.choice(len(COUNTRIES), rows, p=COUNTRY_P)
    age = rng.choice(len(AGE_BANDS), rows, p=AGE_P)
    hour = rng.choice(24, rows, p=_hour_profile())
    amount = np.round(rng.lognormal(mean=3.6 + 0.3 * (merchant == 3), sigma=1.0, size=rows), 2)
    card_present = rng.random(rows) < np.where(merchant == 5, 0.05, 0.7)
    night = (hour < 6).astype(float)
    logit = (
        -4.5
        + 0.55 * np.log1p(amount / 100.0)
        + 1.1 * night
        + MERCHANT_RISK[merchant]
        + COUNTRY_RISK[country]
        + AGE_RISK[age]
        - 0.9 * card_present
        + fraud_shift * (merchant == 6)
    )
    fraud = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "amount": amount,
            "merchant_category": pd.Categorical.from_codes(
                merchant, categories=pd.Index(MERCHANTS)
            ),
            "hour": hour.astype(np.int64),
            "country": pd.Categorical.from_codes(country, categories=pd.Index(COUNTRIES)),
            "age_band": pd.Categorical.from_codes(age, categories=pd.Index(AGE_BANDS)),
            "card_present": card_present,
            LABEL: fraud.astype(np.int64),
        }
    )


def _hour_profile() -> np.ndarray:
    hours = np.arange(24)
    weights = 0.3 + np.exp(-((hours - 13) ** 2) / 30.0) + 0.6 * np.exp(-((hours - 19) ** 2) / 8.0)
    profile: np.ndarray = weights / weights.sum()
    return profile


def recent_transactions(rows: int, seed: int, shift: float) -> pd.DataFrame:
    """Transactions after the market moved by ``shift`` (0: none): larger amounts, more
    card-not-present payments, and fraud moving into fashion merchants."""
    data = make_transactions(rows, seed, fraud_shift=3.0 * shift)
    if shift > 0:
        rng = np.random.default_rng(seed + 1)
        data["amount"] = np.round(data["amount"] * (1.0 + 0.8 * shift), 2)
        flip = rng.random(rows) < 0.4 * min(shift, 1.0)
        data["card_present"] = data["card_present"] & ~flip
    return data
