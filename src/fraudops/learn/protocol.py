"""The handbook's train / delay / test split, its prequential folds and known-card removal.

A fold trains on ``[train_start, train_end]``, skips the label-delay gap, and tests on
``[test_start, test_end]`` (all whole UTC days, ends inclusive). Fold k of a prequential run
is fold 0 shifted back k weeks, so fold 0 is the latest window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from fraudops.errors import InputError, NotEnoughDataError

FOLD_SHIFT_DAYS = 7
"""How far back each further prequential fold moves (the handbook's weekly folds)."""


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Fold:
    """One train / delay / test split; dates are whole UTC days and ends are inclusive."""

    index: int
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    delay_days: int

    def __post_init__(self) -> None:
        if self.train_end < self.train_start:
            raise InputError(f"training window ends {self.train_end} before {self.train_start}")
        if self.test_end < self.test_start:
            raise InputError(f"test window ends {self.test_end} before {self.test_start}")
        if self.delay_days < 0:
            raise InputError(f"delay_days must be non-negative, got {self.delay_days}")

    @property
    def train_window(self) -> tuple[datetime, datetime]:
        """The training window as half-open UTC datetimes ``[start, end)``."""
        return day_start(self.train_start), day_start(self.train_end + timedelta(days=1))

    @property
    def test_window(self) -> tuple[datetime, datetime]:
        """The test window as half-open UTC datetimes ``[start, end)``."""
        return day_start(self.test_start), day_start(self.test_end + timedelta(days=1))

    @property
    def test_days(self) -> list[date]:
        """Every test day, in order."""
        n = (self.test_end - self.test_start).days + 1
        return [self.test_start + timedelta(days=i) for i in range(n)]

    def describe_train(self) -> str:
        """The training window as a person reads it, for error messages."""
        return f"training window {self.train_start}…{self.train_end} (fold {self.index})"

    def describe_test(self) -> str:
        """The test window as a person reads it, for error messages."""
        return f"test window {self.test_start}…{self.test_end} (fold {self.index})"


def prequential_folds(
    train_start: date,
    *,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
    n_folds: int = 1,
) -> list[Fold]:
    """The folds of a prequential run; fold 0's training window starts on ``train_start``."""
    for name, value, least in (
        ("train_days", train_days, 1),
        ("test_days", test_days, 1),
        ("n_folds", n_folds, 1),
        ("delay_days", delay_days, 0),
    ):
        if value < least:
            raise InputError(f"{name} must be at least {least}, got {value}")
    folds = []
    for k in range(n_folds):
        start = train_start - timedelta(days=k * FOLD_SHIFT_DAYS)
        test_start = start + timedelta(days=train_days + delay_days)
        folds.append(
            Fold(
                index=k,
                train_start=start,
                train_end=start + timedelta(days=train_days - 1),
                test_start=test_start,
                test_end=test_start + timedelta(days=test_days - 1),
                delay_days=delay_days,
            )
        )
    return folds


@dataclass(frozen=True, slots=True)
class TestSet:
    """The test transactions left once known-compromised cards are removed."""

    __test__ = False  # not a pytest test class, despite the name

    frame: pd.DataFrame
    removed_cards: int
    removed_transactions: int


def remove_known_cards(frame: pd.DataFrame, fold: Fold) -> TestSet:
    """The fold's test transactions without cards already known to be compromised.

    ``frame`` holds at least the transactions from the earlier of ``fold.train_start`` and
    ``fold.test_start`` to ``fold.test_end``
    with columns ``ts``, ``customer_id`` and ``is_fraud``. On test day T a card counts as
    known when it had a fraud on any day from the training start (or the test start, when a
    model is measured on an earlier week) up to T − delay − 1: the labels of those days have
    arrived by T, so catching the card again proves nothing.
    """
    days = frame["ts"].dt.tz_convert("UTC").dt.date
    since = min(fold.train_start, fold.test_start)
    history = (days >= since) & (frame["is_fraud"].to_numpy() == 1)
    fraud_day = (
        pd.DataFrame({"customer_id": frame["customer_id"][history], "day": days[history]})
        .groupby("customer_id")["day"]
        .min()
    )
    kept: list[pd.DataFrame] = []
    removed_cards: set[str] = set()
    removed_transactions = 0
    for day in fold.test_days:
        on_day = frame[(days == day).to_numpy()]
        cutoff = day - timedelta(days=fold.delay_days + 1)
        known = fraud_day.index[(fraud_day <= cutoff).to_numpy()]
        is_known = on_day["customer_id"].isin(known).to_numpy()
        removed_cards.update(on_day["customer_id"][is_known])
        removed_transactions += int(is_known.sum())
        kept.append(on_day[~is_known])
    test = pd.concat(kept) if kept else frame.iloc[:0]
    return TestSet(
        frame=test.reset_index(drop=True),
        removed_cards=len(removed_cards),
        removed_transactions=removed_transactions,
    )


def _between(frame: pd.DataFrame, window: tuple[datetime, datetime]) -> pd.DataFrame:
    start, end = window
    ts = frame["ts"]
    inside: pd.DataFrame = frame[((ts >= start) & (ts < end)).to_numpy()]
    return inside


def training_rows(frame: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """The fold's training transactions; NotEnoughDataError unless both classes are present."""
    train = _between(frame, fold.train_window)
    frauds = int(train["is_fraud"].sum())
    if frauds == 0 or frauds == len(train):
        raise NotEnoughDataError(
            f"{fold.describe_train()} holds {len(train)} transactions, {frauds} fraudulent;"
            " training needs both fraudulent and genuine ones"
        )
    return train


def assessment_rows(frame: pd.DataFrame, fold: Fold) -> TestSet:
    """The fold's test set after known-card removal; NotEnoughDataError unless both classes."""
    # From the earlier of the two starts: a test week before the training window (a model
    # measured on the past) must not be cut away.
    first = min(fold.train_window[0], fold.test_window[0])
    history = _between(frame, (first, fold.test_window[1]))
    test = remove_known_cards(history, fold)
    frauds = int(test.frame["is_fraud"].sum())
    if frauds == 0 or frauds == len(test.frame):
        raise NotEnoughDataError(
            f"{fold.describe_test()} holds {len(test.frame)} transactions, {frauds}"
            " fraudulent after removing known cards; testing needs both"
        )
    return test
