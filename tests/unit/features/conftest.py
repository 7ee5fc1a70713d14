"""A small vectorised generator of lake-shaped data, and lake fixtures built with it.

The data is shaped to exercise every edge the feature semantics talk about: many cards and
terminals, same-second ties within a card, transactions exactly one window apart, frauds
clustered on compromised terminals and cards, terminals without a location, and labels
that arrive early, late, overturned, tied, for unknown transactions or impossibly early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy.spatial import cKDTree

from fraudops import lake as lake_layout

START = datetime(2024, 1, 1, tzinfo=UTC)
SECOND = 1_000_000
HOUR = 3_600 * SECOND
DAY = 24 * HOUR
_EDGE_OFFSETS = np.array([HOUR, DAY, 7 * DAY, 30 * DAY, 8 * DAY, 14 * DAY, 37 * DAY])


@dataclass(frozen=True)
class LakeSpec:
    """How much data to generate."""

    days: int = 40
    tx_per_day: int = 500
    cards: int = 300
    terminals: int = 600
    seed: int = 7
    start: datetime = START
    label_delay_days: int = 7


def _start_us(spec: LakeSpec) -> int:
    return int((spec.start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * SECOND


def generate(spec: LakeSpec) -> tuple[pa.Table, pa.Table]:
    """Transactions and labels as Arrow tables in the lake's schemas."""
    rng = np.random.default_rng(spec.seed)
    n = spec.days * spec.tx_per_day
    card_xy = rng.uniform(0, 100, (spec.cards, 2))
    terminal_xy = rng.uniform(0, 100, (spec.terminals, 2))
    no_location = rng.random(spec.terminals) < 0.05
    neighbours = min(20, spec.terminals)
    _, candidates = cKDTree(terminal_xy).query(card_xy, k=neighbours)
    candidates = np.asarray(candidates).reshape(spec.cards, neighbours)
    card_mean = rng.uniform(5, 100, spec.cards)
    card_weight = rng.gamma(2.0, 1.0, spec.cards)

    card = rng.choice(spec.cards, n, p=card_weight / card_weight.sum())
    terminal = candidates[card, rng.integers(0, neighbours, n)]
    day = rng.integers(0, spec.days, n)
    second = np.clip(rng.normal(43_200, 20_000, n), 0, 86_399).astype(np.int64)
    t = _start_us(spec) + day * DAY + second * SECOND
    fractional = rng.random(n) < 0.03
    t[fractional] += rng.integers(1, SECOND, fractional.sum())
    amount = np.round(np.abs(rng.normal(card_mean[card], card_mean[card] / 2)), 2)
    # Repeated amounts make histories whose spread is exactly zero.
    repeat = rng.random(n) < 0.02
    amount[repeat] = np.round(card_mean[card[repeat]], 2)

    # Same-second twins of one card, and echoes exactly one window (or 1 µs less) later.
    twin = rng.random(n) < 0.02
    echo = rng.random(n) < 0.02
    echo_shift = rng.choice(_EDGE_OFFSETS, echo.sum()) - rng.integers(0, 2, echo.sum())
    card = np.concatenate([card, card[twin], card[echo]])
    terminal = np.concatenate([terminal, candidates[card[n : n + twin.sum()], 0], terminal[echo]])
    t = np.concatenate([t, t[twin], t[echo] + echo_shift])
    amount = np.concatenate([amount, np.round(amount[twin] * 0.5, 2), amount[echo]])
    total = len(t)

    scenario = np.zeros(total, dtype=np.int16)
    scenario[amount > 220] = 1
    first = _start_us(spec)
    for _ in range(max(1, spec.days * spec.terminals // 5_000)):
        hit, since = rng.integers(0, spec.terminals), first + rng.integers(0, spec.days) * DAY
        scenario[(terminal == hit) & (t >= since) & (t < since + 28 * DAY)] = 2
    for _ in range(max(1, spec.days * spec.cards * 3 // 5_000)):
        hit, since = rng.integers(0, spec.cards), first + rng.integers(0, spec.days) * DAY
        stolen = (card == hit) & (t >= since) & (t < since + 14 * DAY) & (rng.random(total) < 1 / 3)
        amount[stolen] = np.round(amount[stolen] * 5, 2)
        scenario[stolen] = 3
    fraud = scenario > 0

    ids = np.array([f"tx-{i:08d}" for i in rng.permutation(total)])
    xy = terminal_xy[terminal]
    located = ~no_location[terminal]
    transactions = pa.table(
        {
            "transaction_id": ids,
            "ts": pa.array(t, pa.int64()).cast(lake_layout.TIMESTAMP),
            "customer_id": np.char.add("card-", card.astype(str)),
            "terminal_id": np.char.add("term-", terminal.astype(str)),
            "amount": amount,
            "currency": np.full(total, "EUR"),
            "channel": pa.nulls(total, pa.string()),
            "country": pa.nulls(total, pa.string()),
            "merchant_category": pa.nulls(total, pa.string()),
            "terminal_x": pa.array(xy[:, 0], mask=~located),
            "terminal_y": pa.array(xy[:, 1], mask=~located),
            "source": np.full(total, "generated"),
        },
        schema=lake_layout.TRANSACTIONS,
    )
    return transactions, _labels(rng, ids, t, fraud, scenario, spec)


def _labels(
    rng: np.random.Generator,
    ids: np.ndarray,
    t: np.ndarray,
    fraud: np.ndarray,
    scenario: np.ndarray,
    spec: LakeSpec,
) -> pa.Table:
    """Labels with early, late, overturned, tied, unknown and impossible ones."""
    delay_day = spec.label_delay_days * DAY
    frauds = np.flatnonzero(fraud)
    mix = rng.random(len(frauds))
    delay = np.select(
        [mix < 0.3, mix < 0.7, mix < 0.9],
        [
            rng.integers(HOUR, 2 * DAY, len(frauds)),
            rng.integers(2 * DAY, 10 * DAY, len(frauds)),
            rng.integers(10 * DAY, 45 * DAY, len(frauds)),
        ],
        delay_day,
    )
    # Whole seconds, like the transactions, so labels tie with transaction times.
    known = (t[frauds] + delay) // SECOND * SECOND + SECOND
    genuine = np.flatnonzero(~fraud)
    genuine = genuine[rng.random(len(genuine)) < 0.2]
    genuine_known = (t[genuine] + rng.integers(DAY, 30 * DAY, len(genuine))) // SECOND * SECOND
    overturned = frauds[rng.random(len(frauds)) < 0.1]
    overturned_known = (
        (t[overturned] + rng.integers(20 * DAY, 40 * DAY, len(overturned))) // SECOND * SECOND
    )
    converted = genuine[rng.random(len(genuine)) < 0.03]
    converted_known = (
        (t[converted] + rng.integers(31 * DAY, 50 * DAY, len(converted))) // SECOND * SECOND
    )
    tied = rng.random(len(frauds)) < 0.02
    instant = genuine[rng.random(len(genuine)) < 0.01]
    impossible = genuine[rng.random(len(genuine)) < 0.01]
    unknown = np.array([f"tx-unknown-{i}" for i in range(5)])

    parts = [
        (ids[frauds], True, known, "dataset", scenario[frauds]),
        (ids[genuine], False, genuine_known, "dataset", np.zeros(len(genuine), np.int16)),
        (ids[overturned], False, overturned_known, "analyst", None),
        (ids[converted], True, converted_known, "chargeback", None),
        (ids[frauds][tied], False, known[tied], "analyst", None),
        # Known at the moment of the transaction, as a file of historical labels says.
        (ids[instant], True, t[instant], "dataset", None),
        # Known before the transaction happened: impossible, ignored by both engines.
        (ids[impossible], True, t[impossible] - SECOND, "analyst", None),
        (unknown, True, np.full(len(unknown), t.max()), "analyst", None),
    ]
    columns: dict[str, list[pa.Array]] = {
        "transaction_id": [],
        "is_fraud": [],
        "source": [],
        "known_at": [],
        "scenario": [],
    }
    for tx_ids, is_fraud, known_at, source, scenarios in parts:
        size = len(tx_ids)
        columns["transaction_id"].append(pa.array(tx_ids, pa.string()))
        columns["is_fraud"].append(pa.array(np.full(size, is_fraud)))
        columns["source"].append(pa.array(np.full(size, source), pa.string()))
        columns["known_at"].append(pa.array(known_at, pa.int64()).cast(lake_layout.TIMESTAMP))
        columns["scenario"].append(
            pa.nulls(size, pa.int16()) if scenarios is None else pa.array(scenarios, pa.int16())
        )
    return pa.table(
        {name: pa.concat_arrays(arrays) for name, arrays in columns.items()},
        schema=lake_layout.LABELS,
    )


def write_lake(lake: Path, transactions: pa.Table, labels: pa.Table) -> Path:
    """Append both tables to ``lake`` with the lake's own writer."""
    run = lake_layout.new_run_id()
    lake_layout.append_by_day(lake, lake_layout.TRANSACTIONS_DIR, transactions, "ts", run)
    lake_layout.append_by_day(lake, lake_layout.LABELS_DIR, labels, "known_at", run)
    return lake


LakeFactory = Callable[[LakeSpec], Path]


@pytest.fixture
def make_lake(tmp_path: Path) -> LakeFactory:
    """Build a fresh lake from a spec under the test's temporary directory."""
    counter = iter(range(1_000))

    def build(spec: LakeSpec) -> Path:
        transactions, labels = generate(spec)
        return write_lake(tmp_path / f"lake-{next(counter)}", transactions, labels)

    return build


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared ~20k-transaction lake (read-only for the tests that use it)."""
    transactions, labels = generate(LakeSpec())
    return write_lake(tmp_path_factory.mktemp("small-lake"), transactions, labels)
