"""Replaying the lake through the online decision path, one event at a time, in the order
production sees them (the feature stage's ``event_order``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np

from fraudops import lake as lake_layout
from fraudops.decide.engine import DecisionEngine
from fraudops.features.replay import event_order, lake_events
from fraudops.progress import Progress, no_progress
from fraudops.types import Action, Decision, Label, Transaction


def truth_of(lake: Path, start: datetime, end: datetime) -> dict[str, bool]:
    """Whether each transaction in [start, end) was fraud, by its latest label (any known_at)."""
    if not lake_layout.has_table(lake, lake_layout.LABELS_DIR):
        return {}
    rows = duckdb.execute(
        "SELECT l.transaction_id, arg_max(l.is_fraud, l.known_at) "
        "FROM read_parquet(?, hive_partitioning = false) l "
        "JOIN read_parquet(?, hive_partitioning = false) t USING (transaction_id) "
        "WHERE t.ts >= ? AND t.ts < ? GROUP BY l.transaction_id",
        [
            lake_layout.parquet_glob(lake, lake_layout.LABELS_DIR),
            lake_layout.parquet_glob(lake, lake_layout.TRANSACTIONS_DIR),
            start,
            end,
        ],
    ).fetchall()
    return {transaction_id: bool(is_fraud) for transaction_id, is_fraud in rows}


@dataclass
class ReplaySummary:
    """What a replay decided, against the truth the lake holds."""

    decisions: int = 0
    warmup_transactions: int = 0
    labels_observed: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    flagged_fraud: int = 0
    flagged: int = 0
    frauds: int = 0

    def to_dict(self) -> dict[str, object]:
        latencies = np.asarray(self.latencies_ms or [np.nan])
        caught = self.flagged_fraud
        return {
            "decisions": self.decisions,
            "warmup_transactions": self.warmup_transactions,
            "labels_observed": self.labels_observed,
            "by_action": {action.value: self.by_action[action.value] for action in Action},
            "frauds": self.frauds,
            "flagged": self.flagged,
            "precision": caught / self.flagged if self.flagged else None,
            "recall": caught / self.frauds if self.frauds else None,
            "latency_ms_p50": float(np.percentile(latencies, 50)),
            "latency_ms_p99": float(np.percentile(latencies, 99)),
            "latency_ms_max": float(np.max(latencies)),
        }


def replay(
    engine: DecisionEngine,
    lake: Path,
    *,
    warmup_start: datetime,
    decide_start: datetime,
    end: datetime,
    truth: dict[str, bool],
    progress: Progress = no_progress,
) -> tuple[ReplaySummary, list[Decision]]:
    """Warm the online state on [warmup_start, decide_start), then decide every tx up to ``end``.

    ``truth`` maps transaction ids to whether they were fraud, for precision and recall of the
    review + decline decisions; it is never shown to the engine.
    """
    summary = ReplaySummary()
    decisions: list[Decision] = []
    ordered = sorted(lake_events(lake, start=warmup_start, end=end), key=event_order)
    total = sum(1 for e in ordered if isinstance(e, Transaction) and e.timestamp >= decide_start)
    for event in ordered:
        if isinstance(event, Label):
            engine.learn(event)
            summary.labels_observed += 1
            continue
        if event.timestamp < decide_start:
            engine.features.compute_and_update(event)
            summary.warmup_transactions += 1
            continue
        decision = engine.decide(event)
        decisions.append(decision)
        summary.decisions += 1
        summary.by_action[decision.action.value] += 1
        summary.latencies_ms.append(decision.latency_ms)
        is_fraud = truth.get(event.transaction_id, False)
        summary.frauds += is_fraud
        if decision.action is not Action.APPROVE:
            summary.flagged += 1
            summary.flagged_fraud += is_fraud
        if summary.decisions % 1000 == 0 or summary.decisions == total:
            progress("replay (online path)", summary.decisions, total)
    return summary, decisions
