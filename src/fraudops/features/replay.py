"""Replaying events through the online engine in the order production would see them.

Transactions happen at their timestamp and labels at their ``known_at``. At equal times
transactions go first: a label counts for a transaction at ``t`` only if it was known
strictly before ``t``, and a label known at the moment of its own transaction (all a file of
historical labels can say) then lands right after that transaction. Ties are broken by id,
so a replay is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from fraudops import lake as lake_layout
from fraudops.errors import LakeError
from fraudops.features.online import OnlineFeatures, to_micros
from fraudops.progress import Progress, no_progress
from fraudops.types import Label, LabelSource, Transaction

Event = Transaction | Label

_TRANSACTION_FIRST = 0
_LABEL_NEXT = 1
_PROGRESS_EVERY = 10_000


def event_order(event: Event) -> tuple[int, int, str]:
    """The sort key of production order: by time, transactions before labels, then by id."""
    if isinstance(event, Label):
        return to_micros(event.known_at), _LABEL_NEXT, event.transaction_id
    return to_micros(event.timestamp), _TRANSACTION_FIRST, event.transaction_id


def replay(
    events: Iterable[Event], online: OnlineFeatures, *, progress: Progress = no_progress
) -> pd.DataFrame:
    """Feed ``events`` to ``online`` in time order; one row of features per transaction.

    Columns: transaction_id, ts, customer_id, terminal_id, then the definition's features.
    """
    ordered = sorted(events, key=event_order)
    names = online.definition.names
    transactions: list[Transaction] = []
    rows: list[np.ndarray] = []
    total = len(ordered)
    for done, event in enumerate(ordered, start=1):
        if isinstance(event, Label):
            online.observe_label(event)
        else:
            rows.append(online.compute_and_update(event))
            transactions.append(event)
        if done % _PROGRESS_EVERY == 0:
            progress("replay", done, total)
    progress("replay", total, total)
    values = np.vstack(rows) if rows else np.empty((0, len(names)), dtype=np.float64)
    frame = pd.DataFrame(
        {
            "transaction_id": [tx.transaction_id for tx in transactions],
            "ts": pd.to_datetime([tx.timestamp for tx in transactions], utc=True).as_unit("us"),
            "customer_id": [tx.customer_id for tx in transactions],
            "terminal_id": [tx.terminal_id for tx in transactions],
        }
    )
    features = pd.DataFrame(values, columns=list(names), index=frame.index)
    return pd.concat([frame, features], axis=1)


def _where(column: str, start: datetime | None, end: datetime | None) -> tuple[str, list[object]]:
    clauses: list[str] = ["true"]
    params: list[object] = []
    if start is not None:
        clauses.append(f"{column} >= ?")
        params.append(start)
    if end is not None:
        clauses.append(f"{column} < ?")
        params.append(end)
    return " and ".join(clauses), params


def _label_source(value: str) -> LabelSource:
    try:
        return LabelSource(value)
    except ValueError as exc:
        raise LakeError(f"label source {value!r} is not one of {list(LabelSource)}") from exc


def lake_events(
    lake: Path, *, start: datetime | None = None, end: datetime | None = None
) -> Sequence[Event]:
    """The lake's transactions with ``start ≤ ts < end`` and labels with ``known_at`` there."""
    if not lake_layout.has_table(lake, lake_layout.TRANSACTIONS_DIR):
        raise LakeError(f"{lake}: no transactions in the lake")
    events: list[Event] = []
    with duckdb.connect() as con:
        where, params = _where("ts", start, end)
        rows = con.execute(
            "select transaction_id, ts, customer_id, terminal_id, amount, currency, channel, "
            "country, merchant_category, terminal_x, terminal_y from read_parquet(?, "
            f"hive_partitioning = true) where {where}",
            [lake_layout.parquet_glob(lake, lake_layout.TRANSACTIONS_DIR), *params],
        ).fetchall()
        events.extend(Transaction(*row) for row in rows)
        if lake_layout.has_table(lake, lake_layout.LABELS_DIR):
            where, params = _where("known_at", start, end)
            rows = con.execute(
                "select transaction_id, is_fraud, source, known_at from read_parquet(?, "
                f"hive_partitioning = true) where {where}",
                [lake_layout.parquet_glob(lake, lake_layout.LABELS_DIR), *params],
            ).fetchall()
            events.extend(Label(tid, fraud, _label_source(src), at) for tid, fraud, src, at in rows)
    return events
