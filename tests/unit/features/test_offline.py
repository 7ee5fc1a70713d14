"""The offline feature table: shape, target, slicing and point-in-time correctness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fraudops import lake as lake_layout
from fraudops.errors import LakeError
from fraudops.features import DEFAULT_FEATURES, build_feature_table
from fraudops.features.offline import KEY_COLUMNS

from ._frames import mismatches
from .conftest import START, LakeFactory, LakeSpec, generate, write_lake


def test_table_has_keys_then_features_sorted(small_lake: Path) -> None:
    """Key columns, then the features in definition order, sorted by (ts, transaction_id)."""
    table = build_feature_table(small_lake)
    assert [*KEY_COLUMNS, *DEFAULT_FEATURES.names] == list(table.columns)
    assert np.int8 == table["is_fraud"].dtype
    assert np.int16 == table["scenario"].dtype
    assert {np.dtype(np.float64)} == {table[name].dtype for name in DEFAULT_FEATURES.names}
    keys = list(zip(table["ts"], table["transaction_id"], strict=True))
    assert sorted(keys) == keys


def test_a_slice_equals_the_same_rows_of_the_full_table(small_lake: Path) -> None:
    """start/end select rows; history before start still feeds their windows."""
    start, end = START + timedelta(days=25), START + timedelta(days=33)
    full = build_feature_table(small_lake)
    expected = full[(full["ts"] >= start) & (full["ts"] < end)].reset_index(drop=True)
    actual = build_feature_table(small_lake, start=start, end=end)
    assert list(expected["transaction_id"]) == list(actual["transaction_id"])
    differing = mismatches(expected, actual, DEFAULT_FEATURES.names)
    assert not differing, differing


def test_future_events_do_not_change_past_features(tmp_path: Path) -> None:
    """Appending later transactions and labels leaves earlier features unchanged."""
    transactions, labels = generate(LakeSpec(days=30, seed=11))
    cutoff = pa.scalar(START + timedelta(days=20), lake_layout.TIMESTAMP)
    lake = write_lake(
        tmp_path / "lake",
        transactions.filter(pc.less(transactions["ts"], cutoff)),
        labels.filter(pc.less(labels["known_at"], cutoff)),
    )
    before = build_feature_table(lake)
    write_lake(
        lake,
        transactions.filter(pc.greater_equal(transactions["ts"], cutoff)),
        labels.filter(pc.greater_equal(labels["known_at"], cutoff)),
    )
    after = build_feature_table(lake, end=START + timedelta(days=20))
    assert list(before["transaction_id"]) == list(after["transaction_id"])
    differing = mismatches(before, after, DEFAULT_FEATURES.names)
    assert not differing, differing


def _mini_lake(
    path: Path, rows: list[tuple[str, datetime, str]], labels: list[tuple[str, bool, datetime]]
) -> Path:
    count = len(rows)
    transactions = pa.table(
        {
            "transaction_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], lake_layout.TIMESTAMP),
            "customer_id": [r[2] for r in rows],
            "terminal_id": ["m1"] * count,
            "amount": [10.0] * count,
            "currency": ["EUR"] * count,
            "channel": [None] * count,
            "country": [None] * count,
            "merchant_category": [None] * count,
            "terminal_x": [None] * count,
            "terminal_y": [None] * count,
            "source": ["test"] * count,
        },
        schema=lake_layout.TRANSACTIONS,
    )
    label_table = pa.table(
        {
            "transaction_id": [label[0] for label in labels],
            "is_fraud": [label[1] for label in labels],
            "source": ["analyst"] * len(labels),
            "known_at": pa.array([label[2] for label in labels], lake_layout.TIMESTAMP),
            "scenario": pa.array([2 if label[1] else 0 for label in labels], pa.int16()),
        },
        schema=lake_layout.LABELS,
    )
    return write_lake(path, transactions, label_table)


T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_label_counts_only_once_known(tmp_path: Path) -> None:
    """A fraud in the delayed window counts only after its known_at, not at it or before."""
    known = T0 + timedelta(days=9)
    lake = _mini_lake(
        tmp_path,
        [
            ("a", T0, "c1"),
            ("before", T0 + timedelta(days=7, hours=12), "c2"),
            ("at", known, "c3"),
            ("after", T0 + timedelta(days=10), "c4"),
        ],
        [("a", True, known)],
    )
    table = build_feature_table(lake).set_index("transaction_id")
    counts, risk = table["terminal_tx_count_30d"], table["terminal_risk_30d"]
    expected = (1.0, 1.0, 1.0)
    assert expected == (counts["before"], counts["at"], counts["after"])
    expected = (0.0, 0.0, 1.0)
    assert expected == (risk["before"], risk["at"], risk["after"])


def test_target_is_the_latest_label_whenever_known(tmp_path: Path) -> None:
    """is_fraud is the latest label even if known long after; fraud wins a tie."""
    lake = _mini_lake(
        tmp_path,
        [("cleared", T0, "c1"), ("tied", T0, "c2"), ("late", T0, "c3"), ("none", T0, "c4")],
        [
            ("cleared", True, T0 + timedelta(days=1)),
            ("cleared", False, T0 + timedelta(days=2)),
            ("tied", False, T0 + timedelta(days=1)),
            ("tied", True, T0 + timedelta(days=1)),
            ("late", True, T0 + timedelta(days=400)),
        ],
    )
    target = build_feature_table(lake).set_index("transaction_id")
    expected = {"cleared": 0, "tied": 1, "late": 1, "none": 0}
    assert expected == target["is_fraud"].to_dict()
    expected = {"cleared": 0, "tied": 2, "late": 2, "none": 0}
    assert expected == target["scenario"].to_dict()


def test_a_lake_without_labels_has_no_fraud(make_lake: LakeFactory, tmp_path: Path) -> None:
    """Transactions alone give a table whose target is all zero."""
    transactions, _ = generate(LakeSpec(days=3, tx_per_day=100))
    lake = tmp_path / "unlabelled"
    lake_layout.append_by_day(lake, lake_layout.TRANSACTIONS_DIR, transactions, "ts", "r1")
    table = build_feature_table(lake)
    assert transactions.num_rows == len(table)
    expected = 0
    assert expected == int(table["is_fraud"].sum())


def test_an_empty_lake_is_an_error(tmp_path: Path) -> None:
    """No transactions at all is a LakeError, not an empty table."""
    with pytest.raises(LakeError):
        build_feature_table(tmp_path)


def test_time_since_previous_reaches_before_the_lookback(tmp_path: Path) -> None:
    """A card's previous transaction counts even when it precedes the read-back window."""
    lake = _mini_lake(
        tmp_path, [("first", T0, "c1"), ("second", T0 + timedelta(days=50), "c1")], []
    )
    sliced = build_feature_table(lake, start=T0 + timedelta(days=45))
    expected = 50 * 86_400.0
    assert (
        expected == sliced.set_index("transaction_id").loc["second", "seconds_since_card_prev_tx"]
    )
