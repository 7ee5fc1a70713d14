"""Champion against challenger on the decision log's recent labelled traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from fraudops.decide.log import DecisionRecord, SqlDecisionStore
from fraudops.errors import NotEnoughDataError
from fraudops.learn.compare import compare_models, labelled_traffic
from fraudops.types import Action, Decision, Label, LabelSource, Reason, Transaction

FloatArray = npt.NDArray[np.float64]
FEATURES = ("a", "b")
SINCE = datetime(2018, 6, 1, tzinfo=UTC)
UNTIL = datetime(2018, 6, 2, tzinfo=UTC)


class ColumnScorer:
    """A model whose score is one feature's value."""

    def __init__(self, column: str) -> None:
        self.version = f"model-{column}"
        self.feature_names: tuple[str, ...] = (column,)

    def score(self, features: FloatArray) -> float:
        return float(features[0])

    def score_batch(self, features: FloatArray) -> FloatArray:
        return np.asarray(features, dtype=np.float64)[:, 0]

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        return ()


def record(
    tx_id: str, decided_at: datetime, features: dict[str, float | None] | None
) -> DecisionRecord:
    """A decision on a transaction of its own card, made at ``decided_at``."""
    tx = Transaction(tx_id, decided_at, f"card-{tx_id}", "term-1", 10.0)
    decision = Decision(tx_id, Action.APPROVE, 0.0, (), "champion-1", 1.0)
    return DecisionRecord(decision, tx, features, decided_at)


# (transaction, a = champion's score, b = challenger's score, is fraud)
ROWS = [
    ("t0", 0.9, 0.9, True),
    ("t1", 0.8, 0.1, True),
    ("t2", 0.3, 0.7, False),
    ("t3", 0.1, 0.05, False),
    ("t4", 0.05, 0.6, False),
    ("t5", 0.02, 0.3, False),
]


@pytest.fixture
def log_url(sql_url: str) -> str:
    """A decision log with six labelled decisions in range, and others that must not count."""
    url = sql_url
    store = SqlDecisionStore(url)
    at = SINCE + timedelta(hours=1)
    records = [
        record(tx, at + timedelta(minutes=i), {"a": a, "b": b})
        for i, (tx, a, b, _) in enumerate(ROWS)
    ]
    records += [
        record("unlabelled", at, {"a": 0.99, "b": 0.99}),
        record("before", SINCE - timedelta(hours=1), {"a": 0.99, "b": 0.0}),
        record("no-features", at, None),
    ]
    known = at + timedelta(hours=2)
    labels = [Label(tx, fraud, LabelSource.DATASET, known) for tx, _, _, fraud in ROWS]
    labels += [
        # An earlier chargeback, overruled by the analyst's later verdict: genuine wins.
        Label("t3", True, LabelSource.CHARGEBACK, known - timedelta(hours=1)),
        # Known only after the range: not yet known to this comparison.
        Label("t5", True, LabelSource.ANALYST, UNTIL + timedelta(hours=1)),
        Label("before", True, LabelSource.DATASET, known),
        Label("no-features", True, LabelSource.DATASET, known),
    ]
    store.write(records, labels)
    store.close()
    return url


def test_labelled_traffic_reads_labelled_decisions_in_range(log_url: str) -> None:
    """Only decisions in range with served features and a label count, with the latest label."""
    traffic = labelled_traffic(log_url, since=SINCE, until=UNTIL, feature_names=FEATURES)
    expected = [(tx, a, b, int(fraud)) for tx, a, b, fraud in ROWS]
    assert expected == list(
        zip(
            traffic["transaction_id"],
            traffic["a"],
            traffic["b"],
            traffic["is_fraud"].tolist(),
            strict=True,
        )
    )


def test_compare_champion_and_challenger(log_url: str) -> None:
    """AP, CP@100, false positives at the champion's recall, agreement and flags per model."""
    traffic = labelled_traffic(log_url, since=SINCE, until=UNTIL, feature_names=FEATURES)
    result = compare_models(
        traffic,
        ColumnScorer("a"),
        ColumnScorer("b"),
        review_threshold=0.5,
        since=SINCE,
        until=UNTIL,
    )
    values = result.as_dict()
    # The champion flags both frauds (recall 1.0); the challenger needs five transactions
    # to reach both (three genuine); they agree on t0, t3 and t5.
    assert (6, 2, 1.0, 0.5) == (
        values["transactions"],
        values["frauds"],
        values["operating_recall"],
        values["agreement"],
    )
    summary = {
        role: (
            values[role]["version"],
            values[role]["average_precision"],
            values[role]["card_precision_at_100"],
            values[role]["false_positives_at_recall"],
            values[role]["flagged"],
        )
        for role in ("champion", "challenger")
    }
    assert {
        "champion": ("model-a", 1.0, 0.02, 0, 2),
        "challenger": ("model-b", pytest.approx(0.7), 0.02, 3, 3),
    } == summary
    assert (True, True) == (
        values["champion"]["latency_p50_ms"] >= 0.0,
        values["challenger"]["latency_p50_ms"] >= 0.0,
    )
    assert "2018-06-01T00:00:00+00:00" == values["since"]


def test_without_fraud_in_range_the_comparison_refuses(log_url: str) -> None:
    """A range with no labelled fraud cannot compare models, and says what it found."""
    later = UNTIL + timedelta(days=1)
    traffic = labelled_traffic(log_url, since=UNTIL, until=later, feature_names=FEATURES)
    with pytest.raises(NotEnoughDataError, match="found 0 labelled, 0 of them fraud"):
        compare_models(
            traffic,
            ColumnScorer("a"),
            ColumnScorer("b"),
            review_threshold=0.5,
            since=UNTIL,
            until=later,
        )


def test_too_little_traffic_names_the_range_in_readable_times() -> None:
    """The message gives the compared range to the minute in UTC, as people read times, not
    as ISO strings with microseconds."""
    since = datetime(2024, 3, 1, 9, 0, 12, 345678, tzinfo=UTC)
    until = since + timedelta(days=7)
    empty = pd.DataFrame({"is_fraud": np.array([], dtype=np.int8)})
    with pytest.raises(NotEnoughDataError) as raised:
        compare_models(
            empty,
            ColumnScorer("a"),
            ColumnScorer("b"),
            review_threshold=0.5,
            since=since,
            until=until,
        )
    expected = "between 2024-03-01 09:00 UTC and 2024-03-08 09:00 UTC;"
    assert (True, False) == (expected in str(raised.value), "345678" in str(raised.value))
