"""Behavioural tests of the trained model: what must not move its score, and which way."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.learn.dataset import feature_definition, load_feature_table
from tests.conftest import TrainedLake

TEST_WEEK = (date(2018, 6, 3), date(2018, 6, 9))


def _renamed_copy(lake: Path, target: Path) -> None:
    shutil.copytree(lake / "labels", target / "labels")
    for part in (lake / "transactions").rglob("*.parquet"):
        table = pq.read_table(part, partitioning=None)
        column = table.schema.get_field_index("customer_id")
        renamed = pc.binary_join_element_wise("renamed-", table["customer_id"], "")
        out = target / part.relative_to(lake)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.set_column(column, pa.field("customer_id", pa.string()), renamed), out)


def test_renaming_customers_does_not_move_scores(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """A card's id is a name, not evidence: renaming every card leaves every score unchanged."""
    _renamed_copy(trained_lake.lake, tmp_path / "renamed")
    scorer = load_scorer(trained_lake.model_dir)
    names = list(scorer.feature_names)
    definition = feature_definition(7)
    original = load_feature_table(trained_lake.lake, *TEST_WEEK, definition)
    renamed = load_feature_table(tmp_path / "renamed", *TEST_WEEK, definition)
    by_id = renamed.set_index("transaction_id").loc[original["transaction_id"]]
    np.testing.assert_array_equal(
        scorer.score_batch(original[names].to_numpy()), scorer.score_batch(by_id[names].to_numpy())
    )


def test_ten_times_the_amount_at_a_new_terminal_does_not_lower_the_score(
    trained_lake: TrainedLake,
) -> None:
    """The same payment at ten times the amount, at a terminal the card never used, is no safer.

    Each genuine test row is rewritten as that payment would have been computed: the amount
    ×10, the card's windowed averages (which include the payment) raised accordingly, the
    ratio to its 30-day average ×10, the z-score recomputed, and the terminal marked new.
    """
    scorer = load_scorer(trained_lake.model_dir)
    names = list(scorer.feature_names)
    rows = load_feature_table(trained_lake.lake, *TEST_WEEK, feature_definition(7))
    rows = rows[(rows["is_fraud"] == 0).to_numpy()]
    usable = np.isfinite(rows["amount_zscore_30d"]) & (rows["amount_zscore_30d"] != 0)
    rows = rows[usable.to_numpy()].head(2000)
    changed = rows.copy()
    amount = rows["amount"]
    extra = 9 * amount
    changed["amount"] = 10 * amount
    for window in ("1d", "7d", "30d"):
        count = rows[f"card_tx_count_{window}"]
        changed[f"card_avg_amount_{window}"] = rows[f"card_avg_amount_{window}"] + extra / count
    history_mean = amount / rows["amount_to_card_avg_30d"]
    history_std = (amount - history_mean) / rows["amount_zscore_30d"]
    changed["amount_to_card_avg_30d"] = 10 * rows["amount_to_card_avg_30d"]
    changed["amount_zscore_30d"] = (10 * amount - history_mean) / history_std
    changed["is_new_terminal_for_card"] = 1.0
    before = scorer.score_batch(rows[names].to_numpy())
    after = scorer.score_batch(changed[names].to_numpy())
    lowered = int((after < before - 1e-12).sum())
    expected = 0
    assert expected == lowered, f"{lowered} of {len(rows)} scores went down"
