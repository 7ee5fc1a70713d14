"""Reading the decision log for review: new decisions in order, a card's or terminal's
recent history, and recent scores for the capacity threshold.

The decision log (``fraudops.decide.log``) writes the ``decisions`` table; this module
only reads it, through a table description of the columns it needs, so the two stay apart
(a reader never writes, and the log's hot write path knows nothing of review).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from fraudops.errors import InputError
from fraudops.review._schema import JSON, UTC_TIME
from fraudops.review.cases import IntakeCursor
from fraudops.review.database import as_utc, utc
from fraudops.sql import create_engine, store_error

if TYPE_CHECKING:
    from fraudops.decide.log import DecisionRecord

_decisions = sa.table(
    "decisions",
    sa.column("transaction_id", sa.String),
    sa.column("decided_at", UTC_TIME),
    sa.column("customer_id", sa.String),
    sa.column("terminal_id", sa.String),
    sa.column("transaction", JSON),
    sa.column("features", JSON),
    sa.column("score", sa.Float),
    sa.column("action", sa.String),
    sa.column("reasons", JSON),
    sa.column("rule_hits", JSON),
    sa.column("model_version", sa.String),
    sa.column("source", sa.String),
    sa.column("degraded", sa.Boolean),
    sa.column("degraded_reason", sa.String),
    sa.column("latency_ms", sa.Float),
    sa.column("trace_id", sa.String),
)
_c = _decisions.c


class DecisionReader(Protocol):
    """Reads decision records in the order they were decided."""

    def since(
        self, cursor: IntakeCursor | None, limit: int, *, before: datetime | None = None
    ) -> Sequence[DecisionRecord]:
        """Up to ``limit`` records after ``cursor`` (all from the start if None) and decided
        before ``before``, ordered by (decided_at, transaction_id)."""
        ...


class SqlDecisionReader:
    """Reads the decision log's ``decisions`` table (SQLite or PostgreSQL, by URL).

    Open it on the decision log's own URL (``decision_log.url``). A missing table (the
    log has written nothing yet) is a StoreError like any other database failure.
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 2.0) -> None:
        self.url = url
        self._engine = create_engine(url, connect_timeout_s=connect_timeout_s, what="decision log")

    def since(
        self, cursor: IntakeCursor | None, limit: int, *, before: datetime | None = None
    ) -> list[DecisionRecord]:
        """Up to ``limit`` records after ``cursor`` and decided before ``before``, in order."""
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        query = self._select().order_by(_c.decided_at, _c.transaction_id).limit(limit)
        if cursor is not None:
            at = utc(cursor.decided_at)
            query = query.where(
                sa.or_(
                    _c.decided_at > at,
                    sa.and_(_c.decided_at == at, _c.transaction_id > cursor.transaction_id),
                )
            )
        if before is not None:
            query = query.where(_c.decided_at < utc(before))
        return self._records("read new decisions", query)

    def card_history(self, card_id: str, before: datetime, limit: int = 20) -> list[DecisionRecord]:
        """The card's ``limit`` latest decisions before ``before``, newest first."""
        query = (
            self._select()
            .where(_c.customer_id == card_id, _c.decided_at < utc(before))
            .order_by(_c.decided_at.desc())
            .limit(limit)
        )
        return self._records("read a card's history", query)

    def terminal_history(
        self, terminal_id: str, before: datetime, limit: int = 20
    ) -> list[DecisionRecord]:
        """The terminal's ``limit`` latest decisions before ``before``, newest first.

        The decision log has no index on the terminal, so on a large log this scans; an
        index on ``decisions(terminal_id, decided_at)`` makes it a lookup.
        """
        query = (
            self._select()
            .where(_c.terminal_id == terminal_id, _c.decided_at < utc(before))
            .order_by(_c.decided_at.desc())
            .limit(limit)
        )
        return self._records("read a terminal's history", query)

    def model_scores(self, start: datetime, end: datetime) -> npt.NDArray[np.float64]:
        """The scores the model (not a fallback) gave to decisions in ``[start, end)``."""
        query = sa.select(_c.score).where(
            _c.decided_at >= utc(start), _c.decided_at < utc(end), _c.source == "model"
        )
        try:
            with self._engine.connect() as connection:
                scores = connection.execute(query).scalars().all()
        except SQLAlchemyError as exc:
            raise store_error("read recent scores", exc, what="decision log") from exc
        return np.asarray(scores, dtype=np.float64)

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    def _select(self) -> sa.Select[Any]:
        return sa.select(_decisions)

    def _records(self, operation: str, query: sa.Select[Any]) -> list[DecisionRecord]:
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise store_error(operation, exc, what="decision log") from exc
        return [_record(row) for row in rows]


def _record(values: sa.RowMapping) -> DecisionRecord:
    from fraudops.decide.log import DecisionRecord  # at first use: see cases.py

    return DecisionRecord.decode(
        {
            "decision": {
                "transaction_id": values["transaction_id"],
                "action": values["action"],
                "score": values["score"],
                "reasons": values["reasons"],
                "model_version": values["model_version"],
                "latency_ms": values["latency_ms"],
                "degraded": bool(values["degraded"]),
                "degraded_reason": values["degraded_reason"],
                "rule_hits": values["rule_hits"],
                "source": values["source"],
            },
            "transaction": values["transaction"],
            "features": values["features"],
            "decided_at": as_utc(values["decided_at"]).isoformat(),
            "trace_id": values["trace_id"],
        }
    )
