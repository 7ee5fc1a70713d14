"""Synthetic feature tables: the shape the feature stage produces, with a learnable signal."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

FEATURES = ("signal", "noise", "amount")


def synthetic_features(
    days: int = 42, per_day: int = 400, cards: int = 300, seed: int = 0
) -> pd.DataFrame:
    """A feature table over ``days`` days from 2018-01-01 where ``signal`` predicts fraud."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = datetime(2018, 1, 1, tzinfo=UTC)
    offsets = np.sort(rng.integers(0, days * 86_400, size=n))
    signal = rng.normal(size=n)
    fraud = (signal + rng.normal(scale=0.7, size=n) > 2.3).astype(np.int8)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "ts": pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s"),
            "customer_id": [f"c{i}" for i in rng.integers(0, cards, size=n)],
            "terminal_id": [f"m{i}" for i in rng.integers(0, 50, size=n)],
            "is_fraud": fraud,
            "scenario": fraud.astype(np.int16),
            "signal": signal,
            "noise": rng.normal(size=n),
            "amount": rng.gamma(2.0, 30.0, size=n),
        }
    )


@pytest.fixture(scope="session")
def feature_table() -> pd.DataFrame:
    """Six weeks of synthetic feature rows, about 3 % fraud."""
    return synthetic_features()
