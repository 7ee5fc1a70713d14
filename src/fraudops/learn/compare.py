"""Champion against challenger on recent labelled traffic: the evidence for a promotion.

The traffic is what the decision log holds: each decision's transaction and the features
actually served, joined to the latest label known for it. Both models score the same rows
(offline, from their model directories), and the comparison gives, for each: average
precision, card precision top-100, false positives at the operating recall (the champion's
recall at the policy's review threshold, or 70 % when that cannot be measured), the latency
of one row's score (median), and how often the two put a transaction on the same side of
the review threshold.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from fraudops.decide import log_schema
from fraudops.decide.scorer import Scorer
from fraudops.errors import InputError, NotEnoughDataError
from fraudops.learn.metrics import (
    average_precision,
    card_precision_at_k,
    false_positives_at_recall,
)
from fraudops.sql import as_utc, create_engine, store_error, utc

__all__ = [
    "DEFAULT_RECALL",
    "ModelComparison",
    "ModelFigures",
    "compare_models",
    "labelled_traffic",
]

DEFAULT_RECALL = 0.70
"""The operating recall when the champion's own cannot be measured (no fraud it flags)."""

_LATENCY_ROWS = 1000

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ModelFigures:
    """One model's figures on the compared traffic."""

    version: str
    average_precision: float
    card_precision_at_100: float
    false_positives_at_recall: int
    flagged: int
    """Transactions at or above the review threshold."""
    latency_p50_ms: float


@dataclass(frozen=True, slots=True)
class ModelComparison:
    """Champion and challenger on the same labelled traffic."""

    since: datetime
    until: datetime
    transactions: int
    frauds: int
    review_threshold: float
    operating_recall: float
    """Recall at which false positives are counted: the champion's at the threshold."""
    agreement: float
    """Share of transactions both models put on the same side of the review threshold."""
    champion: ModelFigures
    challenger: ModelFigures

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        values = asdict(self)
        values["since"] = self.since.isoformat()
        values["until"] = self.until.isoformat()
        return values


def labelled_traffic(
    url: str, *, since: datetime, until: datetime, feature_names: tuple[str, ...]
) -> pd.DataFrame:
    """Decisions made in ``[since, until)`` that have a label, with the served features.

    Columns: ``transaction_id``, ``ts`` (the transaction's time, UTC), ``customer_id``,
    ``is_fraud`` (the latest label known for it), then ``feature_names`` in that order
    (NaN where a feature was unknown). Decisions made without features (the feature store
    was down) cannot be scored again and are left out.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise InputError("the compared time range needs timezone-aware times")
    if since >= until:
        raise InputError(
            f"the compared time range is empty: {_when(since)} is not before {_when(until)}"
        )
    label, decision = log_schema.labels.c, log_schema.decisions.c
    latest = (
        sa.select(
            label.transaction_id,
            label.is_fraud,
            sa.func.row_number()
            .over(
                partition_by=label.transaction_id,
                order_by=(label.known_at.desc(), label.id.desc()),
            )
            .label("rank"),
        )
        .where(label.known_at < utc(until))
        .subquery()
    )
    query = (
        sa.select(
            decision.transaction_id,
            decision.tx_timestamp,
            decision.customer_id,
            decision.features,
            latest.c.is_fraud,
        )
        .join(latest, latest.c.transaction_id == decision.transaction_id)
        .where(
            latest.c.rank == 1,
            decision.decided_at >= utc(since),
            decision.decided_at < utc(until),
        )
        .order_by(decision.tx_timestamp, decision.transaction_id)
    )
    engine = create_engine(url, what="decision log")
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("labels"):
                raise NotEnoughDataError(f"decision log {url}: no labels table")
            # JSON columns keep a missing value as JSON null, not SQL NULL: filter here.
            rows = [row for row in connection.execute(query) if row.features is not None]
    except SQLAlchemyError as exc:
        raise store_error("read labelled traffic", exc, what="decision log") from exc
    finally:
        engine.dispose()
    features = np.array(
        [[_value(row.features.get(name)) for name in feature_names] for row in rows],
        dtype=np.float64,
    ).reshape(len(rows), len(feature_names))
    frame = pd.DataFrame(
        {
            "transaction_id": [row.transaction_id for row in rows],
            "ts": pd.to_datetime([as_utc(row.tx_timestamp) for row in rows], utc=True),
            "customer_id": [row.customer_id for row in rows],
            "is_fraud": np.array([bool(row.is_fraud) for row in rows], dtype=np.int8),
        }
    )
    return pd.concat([frame, pd.DataFrame(features, columns=list(feature_names))], axis=1)


def compare_models(
    traffic: pd.DataFrame,
    champion: Scorer,
    challenger: Scorer,
    *,
    review_threshold: float,
    since: datetime,
    until: datetime,
) -> ModelComparison:
    """Both models' figures on ``traffic`` (as ``labelled_traffic`` returns it)."""
    if not 0.0 <= review_threshold <= 1.0:
        raise InputError(f"review_threshold must be in [0, 1], got {review_threshold}")
    labels = traffic["is_fraud"].to_numpy(dtype=np.int8)
    frauds = int(labels.sum())
    if len(traffic) == 0 or frauds == 0 or frauds == len(traffic):
        raise NotEnoughDataError(
            "comparing models needs labelled fraud and genuine transactions between"
            f" {_when(since)} and {_when(until)}; found {len(traffic)} labelled,"
            f" {frauds} of them fraud"
        )
    champion_scores, champion_latency = _scores(traffic, champion)
    challenger_scores, challenger_latency = _scores(traffic, challenger)
    flagged_champion = champion_scores >= review_threshold
    flagged_challenger = challenger_scores >= review_threshold
    caught = int((flagged_champion & (labels == 1)).sum())
    recall = caught / frauds if caught else DEFAULT_RECALL

    def figures(
        scorer: Scorer, scores: FloatArray, flagged: npt.NDArray[np.bool_], p50: float
    ) -> ModelFigures:
        return ModelFigures(
            version=scorer.version,
            average_precision=average_precision(labels, scores),
            card_precision_at_100=card_precision_at_k(traffic, scores, 100)[0],
            false_positives_at_recall=false_positives_at_recall(labels, scores, recall),
            flagged=int(flagged.sum()),
            latency_p50_ms=p50,
        )

    return ModelComparison(
        since=since,
        until=until,
        transactions=len(traffic),
        frauds=frauds,
        review_threshold=review_threshold,
        operating_recall=recall,
        agreement=float((flagged_champion == flagged_challenger).mean()),
        champion=figures(champion, champion_scores, flagged_champion, champion_latency),
        challenger=figures(challenger, challenger_scores, flagged_challenger, challenger_latency),
    )


def _scores(traffic: pd.DataFrame, scorer: Scorer) -> tuple[FloatArray, float]:
    """The scorer's scores of every row (in one batch) and its median one-row latency."""
    missing = [name for name in scorer.feature_names if name not in traffic.columns]
    if missing:
        raise InputError(f"model {scorer.version} needs features the traffic lacks: {missing}")
    rows = traffic[list(scorer.feature_names)].to_numpy(dtype=np.float64)
    scores = np.asarray(scorer.score_batch(rows), dtype=np.float64)
    timings = np.empty(min(len(rows), _LATENCY_ROWS), dtype=np.float64)
    for i in range(len(timings)):
        started = time.perf_counter()
        scorer.score(rows[i])
        timings[i] = time.perf_counter() - started
    return scores, float(np.median(timings) * 1000.0)


def _when(value: datetime) -> str:
    """A time for people, in UTC to the minute: ``2024-03-01 09:00 UTC``."""
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _value(value: float | None) -> float:
    return np.nan if value is None else float(value)
