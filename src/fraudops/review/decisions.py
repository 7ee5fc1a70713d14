"""Reading the decision log for review: new decisions in order, a card's or terminal's
recent history, and recent scores for the capacity threshold.

The decision log (``fraudops.decide.log``) writes the ``decisions`` table; this module
only reads it, through a table description of the columns it needs, so the two stay apart
(a reader never writes, and the log's hot write path knows nothing of review).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    sa.column("logged_at", UTC_TIME),
)
_c = _decisions.c


class DecisionReader(Protocol):
    """Reads decision records in the order the log wrote them, or by when they were decided."""

    def since(
        self, cursor: IntakeCursor | None, limit: int, *, before: datetime | None = None
    ) -> Sequence[LoggedDecision]:
        """Up to ``limit`` records written after ``cursor`` (all from the start if None) and
        before ``before``, ordered by (logged_at, transaction_id)."""
        ...

    def decided_in(
        self, start: datetime, end: datetime, after: str | None, limit: int
    ) -> Sequence[DecisionRecord]:
        """Up to ``limit`` records decided in ``[start, end)``, ordered by (decided_at,
        transaction_id), after the record of transaction ``after`` (from the start if None)."""
        ...


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """A decision record and when the log wrote it (the tailing position)."""

    record: DecisionRecord
    logged_at: datetime


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
    ) -> list[LoggedDecision]:
        """Up to ``limit`` records written after ``cursor`` and before ``before``, in order."""
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        query = self._select().order_by(_c.logged_at, _c.transaction_id).limit(limit)
        query = query.where(_c.logged_at.is_not(None))
        if cursor is not None:
            at = utc(cursor.logged_at)
            query = query.where(
                sa.or_(
                    _c.logged_at > at,
                    sa.and_(_c.logged_at == at, _c.transaction_id > cursor.transaction_id),
                )
            )
        if before is not None:
            query = query.where(_c.logged_at < utc(before))
        rows = self._rows("read new decisions", query)
        return [LoggedDecision(_record(row), as_utc(row["logged_at"])) for row in rows]

    def decided_in(
        self, start: datetime, end: datetime, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        """Up to ``limit`` records decided in ``[start, end)`` after transaction ``after``."""
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        query = (
            self._select()
            .where(_c.decided_at >= utc(start), _c.decided_at < utc(end))
            .order_by(_c.decided_at, _c.transaction_id)
            .limit(limit)
        )
        if after is not None:
            last = sa.select(_c.decided_at).where(_c.transaction_id == after).scalar_subquery()
            query = query.where(
                sa.or_(
                    _c.decided_at > last,
                    sa.and_(_c.decided_at == last, _c.transaction_id > after),
                )
            )
        return self._records("read decisions by time", query)

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
        return [_record(row) for row in self._rows(operation, query)]

    def _rows(self, operation: str, query: sa.Select[Any]) -> Sequence[sa.RowMapping]:
        try:
            with self._engine.connect() as connection:
                return connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise store_error(operation, exc, what="decision log") from exc


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
