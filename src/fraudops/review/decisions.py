"""Reading the decision log for review: new decisions in order, a card's or terminal's
recent history, and recent scores for the capacity threshold.

The decision log (``fraudops.decide.log``) writes the ``decisions`` table; this module
only reads it, through the table described in ``fraudops.decide.log_schema`` and the
log's own row decoder (a reader never writes, and the log's hot write path knows nothing
of review).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from fraudops.decide import log_schema
from fraudops.decide.log import DecisionRecord, record_from_row
from fraudops.errors import InputError
from fraudops.review.cases import IntakeCursor
from fraudops.sql import as_utc, create_engine, store_error, utc

_c = log_schema.decisions.c


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
        return [LoggedDecision(record_from_row(row), as_utc(row["logged_at"])) for row in rows]

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
        """The terminal's ``limit`` latest decisions before ``before``, newest first (one
        lookup in the index ``ix_decisions_terminal``)."""
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
        return sa.select(log_schema.decisions)

    def _records(self, operation: str, query: sa.Select[Any]) -> list[DecisionRecord]:
        return [record_from_row(row) for row in self._rows(operation, query)]

    def _rows(self, operation: str, query: sa.Select[Any]) -> Sequence[sa.RowMapping]:
        try:
            with self._engine.connect() as connection:
                return connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise store_error(operation, exc, what="decision log") from exc
