"""Comparing feature tables: equal within 1e-9 per value, NaN equal to NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd

TOLERANCE = 1e-9


def mismatches(
    expected: pd.DataFrame, actual: pd.DataFrame, names: tuple[str, ...]
) -> dict[str, int]:
    """How many rows differ by more than the tolerance, per feature (only the differing)."""
    counts: dict[str, int] = {}
    for name in names:
        a = expected[name].to_numpy(dtype=np.float64)
        b = actual[name].to_numpy(dtype=np.float64)
        same = (np.abs(a - b) <= TOLERANCE) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            counts[name] = int((~same).sum())
    return counts
