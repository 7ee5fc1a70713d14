"""Training and test data from the lake: the one place learn depends on the feature stage."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from fraudops.features.definition import FeatureDefinition, feature_definition
from fraudops.features.offline import build_feature_table
from fraudops.learn.protocol import day_start
from fraudops.progress import Progress, no_progress

__all__ = ["feature_definition", "load_feature_table"]


def load_feature_table(
    lake: Path,
    first_day: date,
    last_day: date,
    definition: FeatureDefinition,
    progress: Progress = no_progress,
) -> pd.DataFrame:
    """Point-in-time features and labels of every transaction from ``first_day`` to ``last_day``.

    Columns: ``transaction_id``, ``ts``, ``customer_id``, ``terminal_id``, ``is_fraud``,
    ``scenario``, then ``definition.names``; sorted by time.
    """
    return build_feature_table(
        lake,
        definition,
        start=day_start(first_day),
        end=day_start(last_day + timedelta(days=1)),
        progress=progress,
    )
