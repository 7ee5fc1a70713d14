"""The handbook's train / delay / test protocol: fold dates and known-card removal."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from fraudops.errors import InputError
from fraudops.learn.protocol import Fold, prequential_folds, remove_known_cards


def test_test_folds_match_the_handbook() -> None:
    """Training from 2018-08-15 with 4 folds gives the handbook's four test weeks, latest first."""
    folds = prequential_folds(date(2018, 8, 15), n_folds=4)
    expected = [
        ("2018-08-15", "2018-08-21", "2018-08-29", "2018-09-04"),
        ("2018-08-08", "2018-08-14", "2018-08-22", "2018-08-28"),
        ("2018-08-01", "2018-08-07", "2018-08-15", "2018-08-21"),
        ("2018-07-25", "2018-07-31", "2018-08-08", "2018-08-14"),
    ]
    actual = [
        tuple(d.isoformat() for d in (f.train_start, f.train_end, f.test_start, f.test_end))
        for f in folds
    ]
    assert expected == actual


def test_validation_folds_match_the_handbook() -> None:
    """Training from 2018-07-11 gives validation weeks 07-25…07-31 back to 07-04…07-10."""
    folds = prequential_folds(date(2018, 7, 11), n_folds=4)
    expected = [
        (date(2018, 7, 11), date(2018, 7, 25), date(2018, 7, 31)),
        (date(2018, 7, 4), date(2018, 7, 18), date(2018, 7, 24)),
        (date(2018, 6, 27), date(2018, 7, 11), date(2018, 7, 17)),
        (date(2018, 6, 20), date(2018, 7, 4), date(2018, 7, 10)),
    ]
    assert expected == [(f.train_start, f.test_start, f.test_end) for f in folds]


def test_windows_are_half_open_utc_days() -> None:
    """A fold's windows run from midnight UTC of the first day to midnight after the last."""
    fold = prequential_folds(date(2018, 8, 15), train_days=2, delay_days=1, test_days=3)[0]
    assert (
        (datetime(2018, 8, 15, tzinfo=UTC), datetime(2018, 8, 17, tzinfo=UTC)),
        (datetime(2018, 8, 18, tzinfo=UTC), datetime(2018, 8, 21, tzinfo=UTC)),
        [date(2018, 8, 18), date(2018, 8, 19), date(2018, 8, 20)],
    ) == (fold.train_window, fold.test_window, fold.test_days)


def test_impossible_fold_is_an_input_error() -> None:
    """Zero folds or an empty training window is refused with the offending value."""
    with pytest.raises(InputError, match="n_folds"):
        prequential_folds(date(2018, 8, 15), n_folds=0)
    with pytest.raises(InputError, match="train_days"):
        prequential_folds(date(2018, 8, 15), train_days=0)


def _tx(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([f"{day} 12:00" for day, _, _ in rows], utc=True),
            "customer_id": [card for _, card, _ in rows],
            "is_fraud": [fraud for _, _, fraud in rows],
        }
    )


FOLD = Fold(
    index=0,
    train_start=date(2018, 1, 1),
    train_end=date(2018, 1, 7),
    test_start=date(2018, 1, 15),
    test_end=date(2018, 1, 21),
    delay_days=7,
)


def test_card_with_training_fraud_is_removed_from_every_test_day() -> None:
    """A card defrauded in the training window is known on every test day."""
    frame = _tx([("2018-01-03", "A", 1), ("2018-01-15", "A", 0), ("2018-01-21", "A", 1)])
    test = remove_known_cards(frame, FOLD)
    expected = (0, 1, 2)
    assert expected == (len(test.frame), test.removed_cards, test.removed_transactions)


def test_delay_period_fraud_becomes_known_after_the_label_delay() -> None:
    """A fraud on the first delay day (01-08) is known from test day 01-16, not on 01-15."""
    frame = _tx([("2018-01-08", "B", 1), ("2018-01-15", "B", 0), ("2018-01-16", "B", 0)])
    test = remove_known_cards(frame, FOLD)
    kept_days = [ts.date() for ts in test.frame["ts"]]
    assert ([date(2018, 1, 15)], 1) == (kept_days, test.removed_cards)


def test_fraud_in_the_test_week_is_not_yet_known() -> None:
    """A fraud on a test day is only learnt a delay later, so its card stays in the test set."""
    frame = _tx([("2018-01-15", "C", 1), ("2018-01-21", "C", 1)])
    expected = 2
    assert expected == len(remove_known_cards(frame, FOLD).frame)


def test_fraud_before_training_start_does_not_count() -> None:
    """Frauds are known from the training start on, as in the handbook."""
    frame = _tx([("2017-12-31", "D", 1), ("2018-01-15", "D", 0)])
    expected = 1
    assert expected == len(remove_known_cards(frame, FOLD).frame)


def test_only_test_days_are_returned() -> None:
    """Training and delay transactions never leak into the test set."""
    frame = _tx([("2018-01-02", "E", 0), ("2018-01-10", "E", 0), ("2018-01-18", "E", 0)])
    assert [date(2018, 1, 18)] == [ts.date() for ts in remove_known_cards(frame, FOLD).frame["ts"]]
