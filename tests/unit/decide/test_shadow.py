"""The shadow challenger: scored after the decision, off the request path, logged only."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fraudops.api.wiring import Runtime, build_runtime
from fraudops.clock import ManualClock
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.scorer import Scorer
from fraudops.decide.shadow import ShadowScorer, read_shadow_scores
from fraudops.errors import ModelError
from fraudops.features.replay import lake_events
from fraudops.settings import DecisionLogSettings, ServiceSettings, Settings
from fraudops.types import Decision, Reason, Transaction
from tests.conftest import TrainedLake

FloatArray = npt.NDArray[np.float64]
NOW = datetime(2018, 6, 2, 12, tzinfo=UTC)


class SumScorer:
    """A challenger whose score is a / 10 (features ``a`` and ``b``), optionally held."""

    def __init__(self, version: str = "challenger-1", *, hold: threading.Event | None = None):
        self.version = version
        self.feature_names: tuple[str, ...] = ("a", "b")
        self.hold = hold
        self.calls = 0

    def score(self, features: FloatArray) -> float:
        self.calls += 1
        if self.hold is not None:
            self.hold.wait(10.0)
        return float(features[0]) / 10.0

    def score_batch(self, features: FloatArray) -> FloatArray:
        return np.array([self.score(row) for row in features])

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        return ()


class HeldScorer:
    """A real model that waits for ``release`` before every score (a hung challenger)."""

    def __init__(self, real: Scorer) -> None:
        self.real = real
        self.version = "held-challenger"
        self.feature_names = real.feature_names
        self.release = threading.Event()

    def score(self, features: FloatArray) -> float:
        self.release.wait(60.0)  # released by the test; the bound only ends a broken run
        return self.real.score(features)

    def score_batch(self, features: FloatArray) -> FloatArray:
        return np.array([self.score(row) for row in features])

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        return ()


def url_in(tmp_path: Path) -> str:
    """A SQLite decision log database in ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'decisions.db'}"


def test_scores_land_in_the_shadow_table(sql_url: str) -> None:
    """Each handed-over transaction gets one row: its id, the version, the score, a time."""
    shadow = ShadowScorer(SumScorer(), ("b", "a"), sql_url, clock=ManualClock(NOW))
    shadow.start()
    assert shadow.submit("t1", {"a": 2.0, "b": 9.0})
    assert shadow.submit("t2", {"a": 5.0, "b": None})
    shadow.close()
    rows = read_shadow_scores(sql_url)
    assert [("t1", "challenger-1", 0.2, NOW), ("t2", "challenger-1", 0.5, NOW)] == [
        (row.transaction_id, row.model_version, row.score, row.scored_at) for row in rows
    ]
    assert (2, 0, 0) == (shadow.scored, shadow.dropped, shadow.failed)


def test_a_full_queue_drops_and_counts(sql_url: str) -> None:
    """Past the queue's capacity a transaction is refused at once and counted as dropped."""
    dropped: list[int] = []
    shadow = ShadowScorer(SumScorer(), ("a", "b"), sql_url, capacity=2, on_dropped=dropped.append)
    accepted = [shadow.submit(f"t{i}", {"a": 1.0, "b": 1.0}) for i in range(3)]
    assert ([True, True, False], 1, [1]) == (accepted, shadow.dropped, dropped)
    shadow.start()
    shadow.close()
    assert ["t0", "t1"] == [row.transaction_id for row in read_shadow_scores(sql_url)]


def test_a_failing_challenger_is_counted_not_raised(sql_url: str) -> None:
    """A score outside [0, 1] is counted as failed and nothing is written for it."""
    shadow = ShadowScorer(SumScorer(), ("a", "b"), sql_url)
    shadow.start()
    shadow.submit("bad", {"a": 30.0, "b": 0.0})
    shadow.submit("good", {"a": 3.0, "b": 0.0})
    shadow.close()
    assert (1, 1, ["good"]) == (
        shadow.scored,
        shadow.failed,
        [row.transaction_id for row in read_shadow_scores(sql_url)],
    )


def test_a_replaced_challenger_scores_what_follows_under_its_own_version(
    tmp_path: Path,
) -> None:
    """Scores after a replacement are the new model's, under its version; a model that
    needs a feature the service does not serve is refused and the old one stays."""
    url = url_in(tmp_path)
    shadow = ShadowScorer(SumScorer("challenger-1"), ("a", "b"), url, clock=ManualClock(NOW))
    shadow.start()
    shadow.submit("t1", {"a": 2.0, "b": 0.0})
    give_up = time.monotonic() + 30.0
    while shadow.scored < 1 and time.monotonic() < give_up:
        time.sleep(0.01)  # the worker thread writes t1; nothing else to wait on
    needs_c = SumScorer("needs-c")
    needs_c.feature_names = ("a", "c")
    with pytest.raises(ModelError, match="lacks"):
        shadow.replace_scorer(needs_c)
    replaced = shadow.replace_scorer(SumScorer("challenger-2"))
    shadow.submit("t2", {"a": 4.0, "b": 0.0})
    shadow.close()
    assert "challenger-1" == replaced.version
    assert [("t1", "challenger-1", 0.2), ("t2", "challenger-2", 0.4)] == [
        (row.transaction_id, row.model_version, row.score) for row in read_shadow_scores(url)
    ]


def test_no_table_reads_as_no_scores(sql_url: str) -> None:
    """A decision log that never had a shadow has no shadow scores."""
    assert [] == read_shadow_scores(sql_url)


@pytest.fixture(scope="module")
def transactions(trained_lake: TrainedLake) -> list[Transaction]:
    """Forty of the tiny lake's transactions, in time order."""
    events = lake_events(
        trained_lake.lake,
        start=datetime(2018, 6, 1, tzinfo=UTC),
        end=datetime(2018, 6, 2, tzinfo=UTC),
    )
    return [event for event in events if isinstance(event, Transaction)][:40]


@contextmanager
def runtime(
    tmp_path: Path, model_dir: Path, challenger: Scorer | None, url: str | None = None
) -> Iterator[Runtime]:
    """A started runtime on ``model_dir`` with ``challenger`` in shadow (or none), logging
    decisions to ``url`` (a SQLite file in ``tmp_path`` by default)."""
    settings = Settings(
        model_dir=model_dir,
        decision_log=DecisionLogSettings(
            url=url or url_in(tmp_path), spill_dir=tmp_path / "spill", flush_interval_ms=20.0
        ),
        service=ServiceSettings(warmup_rows=0, shadow_queue_size=5),
    )
    built = build_runtime(settings, challenger=challenger, clock=ManualClock(NOW))
    built.start()
    try:
        yield built
    finally:
        built.close()


def decide_all(built: Runtime, transactions: list[Transaction]) -> list[Decision]:
    """Decide ``transactions`` one after another."""

    async def run() -> list[Decision]:
        return [(await built.service.decide(tx))[0] for tx in transactions]

    return asyncio.run(run())


def essentials(decisions: list[Decision]) -> list[tuple[object, ...]]:
    """What a decision says, without its latency."""
    return [(d.action, d.score, d.reasons, d.model_version, d.source) for d in decisions]


def test_the_champion_decides_the_same_with_a_hung_challenger(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """With a challenger that never answers, every decision is the one made without it."""
    challenger = HeldScorer(load_scorer(trained_lake.model_dir))
    with runtime(tmp_path / "plain", trained_lake.model_dir, None) as plain:
        expected = decide_all(plain, transactions)
    with runtime(tmp_path / "shadowed", trained_lake.model_dir, challenger) as shadowed:
        actual = decide_all(shadowed, transactions)
        shadow = shadowed.service.shadow
        assert shadow is not None
        # decide() returned every answer while the challenger had scored nothing; the
        # queue (5) filled, the worker holds one (or had not yet taken it), and the rest
        # were dropped, not waited for.
        dropped_range = range(len(transactions) - 6, len(transactions) - 4)
        assert (0, True) == (shadow.scored, shadow.dropped in dropped_range)
        challenger.release.set()
    assert essentials(expected) == essentials(actual)
    assert "model" == actual[0].source


def test_shadowed_decisions_leave_their_scores_in_the_decision_log(
    tmp_path: Path, sql_url: str, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """The challenger's scores are written beside the decisions, keyed by transaction id."""
    challenger = load_scorer(trained_lake.model_dir)
    with runtime(tmp_path, trained_lake.model_dir, challenger, sql_url) as built:
        decisions = decide_all(built, transactions[:5])
    rows = read_shadow_scores(sql_url)
    by_id = {row.transaction_id: row.score for row in rows}
    # The same model in shadow scores exactly what the champion scored.
    assert {d.transaction_id: d.score for d in decisions} == pytest.approx(by_id)
    text = built.metrics.render()[0].decode()
    assert 'fraudops_shadow_scores_total{outcome="scored"} 5.0' in text
