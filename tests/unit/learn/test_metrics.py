"""The handbook's metrics, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.errors import NotEnoughDataError
from fraudops.learn.metrics import (
    assess,
    average_precision,
    card_precision_at_k,
    false_positives_at_recall,
    roc_auc,
)


def _cards(rows: list[tuple[str, str, int, float]]) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime([f"{day} 10:00" for day, _, _, _ in rows], utc=True),
            "customer_id": [card for _, card, _, _ in rows],
            "is_fraud": [label for _, _, label, _ in rows],
        }
    )
    return frame, np.array([score for _, _, _, score in rows])


# Day 1: a (two tx: max score 0.9, one fraud), b genuine, c fraud; top 2 = a, b -> 1/2,
# and a is detected. Day 2: a is dropped; c, d, e rank c, d -> 1/2. Mean 0.5.
TWO_DAYS = [
    ("2018-01-01", "a", 1, 0.9),
    ("2018-01-01", "a", 0, 0.1),
    ("2018-01-01", "b", 0, 0.8),
    ("2018-01-01", "c", 1, 0.7),
    ("2018-01-02", "a", 1, 0.95),
    ("2018-01-02", "c", 1, 0.6),
    ("2018-01-02", "d", 0, 0.5),
    ("2018-01-02", "e", 1, 0.4),
]


def test_card_precision_matches_hand_computed_example() -> None:
    """CP@2 over two days is 0.5, with 0.5 on each day."""
    frame, scores = _cards(TWO_DAYS)
    expected = (0.5, [0.5, 0.5])
    assert expected == card_precision_at_k(frame, scores, k=2)


def test_detected_card_is_dropped_on_later_days() -> None:
    """Card a, caught on day 1, would lift day 2 to 1.0 were it not removed."""
    frame, scores = _cards(TWO_DAYS)
    day_two = (frame["ts"].dt.day == 2).to_numpy()
    alone = card_precision_at_k(frame[day_two], scores[day_two], k=2)[1]
    with_history = card_precision_at_k(frame, scores, k=2)[1][1]
    expected = (1.0, 0.5)
    assert expected == (alone[0], with_history)


def test_genuine_card_in_top_k_stays_eligible() -> None:
    """A genuine card in a day's top k is not 'detected' and still competes the next day."""
    frame, scores = _cards(
        [
            ("2018-01-01", "g", 0, 0.9),
            ("2018-01-02", "g", 1, 0.9),
            ("2018-01-02", "h", 0, 0.1),
        ]
    )
    expected = [0.0, 1.0]
    assert expected == card_precision_at_k(frame, scores, k=1)[1]


def test_card_precision_below_one_with_fewer_frauds_than_k() -> None:
    """With 3 compromised cards and k = 100, even a perfect ranking scores 0.03."""
    rows = [("2018-01-01", f"c{i}", int(i < 3), 1.0 - i / 200) for i in range(150)]
    frame, scores = _cards(rows)
    expected = pytest.approx(0.03)
    assert expected == card_precision_at_k(frame, scores, k=100)[0]


def test_card_is_compromised_if_any_transaction_that_day_is_fraud() -> None:
    """A card's label is its max label of the day and its score its max score."""
    frame, scores = _cards(
        [
            ("2018-01-01", "x", 0, 0.99),
            ("2018-01-01", "x", 1, 0.01),
            ("2018-01-01", "y", 1, 0.5),
        ]
    )
    expected = [1.0]
    assert expected == card_precision_at_k(frame, scores, k=1)[1]


def test_auc_and_average_precision_match_hand_values() -> None:
    """Labels 1,0,1 scored 0.9,0.8,0.7: AUC 1/2, AP (1 + 2/3) / 2."""
    labels, scores = [1, 0, 1], [0.9, 0.8, 0.7]
    expected: tuple[object, ...] = (0.5, pytest.approx(5 / 6))
    assert expected == (
        roc_auc(labels, scores),
        average_precision(labels, scores),
    )


def test_false_positives_at_recall() -> None:
    """Recall 0.5 of 3 frauds needs 2 caught (1 FP); 0.7 and 0.8 need all 3 (3 FPs)."""
    labels = [1, 0, 1, 0, 0, 1]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    expected = [1, 3, 3]
    assert expected == [false_positives_at_recall(labels, scores, r) for r in (0.5, 0.7, 0.8)]


def test_false_positives_count_every_tied_transaction() -> None:
    """A threshold takes in every transaction with that score, genuine ties included."""
    expected = 2
    assert expected == false_positives_at_recall([0, 1, 0], [0.9, 0.8, 0.8], 0.5)


def test_exact_recall_is_reached_without_float_drift() -> None:
    """Recall 0.7 of 10 frauds is reached at the 7th fraud, not the 8th."""
    labels = [1] * 7 + [0] + [1] * 3
    scores = list(np.linspace(1.0, 0.0, len(labels)))
    expected = 0
    assert expected == false_positives_at_recall(labels, scores, 0.7)


def test_metrics_need_both_classes() -> None:
    """A test set with no fraud cannot be assessed, and says so."""
    frame, scores = _cards([("2018-01-01", "a", 0, 0.5), ("2018-01-01", "b", 0, 0.4)])
    with pytest.raises(NotEnoughDataError, match="fraudulent and genuine"):
        assess(frame, scores)


def test_assess_reports_every_metric() -> None:
    """assess uses k = 100: day 1 catches a and c (2/100), day 2 only e is left (1/100)."""
    frame, scores = _cards(TWO_DAYS)
    report = assess(frame, scores).as_dict()
    expected_keys: set[str] = {
        "roc_auc",
        "average_precision",
        "card_precision_at_100",
        "false_positives_at_recall_50",
        "false_positives_at_recall_70",
        "false_positives_at_recall_80",
    }
    expected: tuple[object, ...] = (expected_keys, pytest.approx(0.015), int)
    assert expected == (
        set(report),
        report["card_precision_at_100"],
        type(report["false_positives_at_recall_80"]),
    )
