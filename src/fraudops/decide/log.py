"""The append-only decision log: every decision with what it was made from, kept in SQL.

A :class:`DecisionRecord` is the audit record of one decision (what was decided, on which
transaction, from which features, when) and, once its label arrives, a row of training
data. :class:`DecisionStore` is the seam; :class:`SqlDecisionStore` keeps records and labels
in SQLite (the embedded default) or PostgreSQL (scaled out), chosen by the URL alone.

Writes are idempotent: a decision is keyed by its transaction id and a label by
``(transaction_id, source, known_at)``, and a re-write of either is ignored (first wins), so
a replay after an outage or a crash can never duplicate a row.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from fraudops.decide import log_schema
from fraudops.errors import StoreError
from fraudops.sql import as_utc, create_engine, store_error
from fraudops.types import Action, Decision, Label, LabelSource, Reason, Transaction

_log = structlog.get_logger("fraudops.decision_log")

_WHAT = "decision log"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision with what it was made from: the audit record and later training data.

    ``features`` are the values actually served, or None when the feature store failed.
    JSON has no NaN or infinity, so a non-finite feature is kept as None (the record holds
    exactly what the log will give back); values are plain floats and the mapping is a
    copy, so a caller changing its dict later cannot change the record. ``decided_at`` must
    be timezone-aware and is kept in UTC.
    """

    decision: Decision
    transaction: Transaction
    features: Mapping[str, float | None] | None
    decided_at: datetime
    trace_id: str | None = None

    def __post_init__(self) -> None:
        if self.decided_at.tzinfo is None:
            raise ValueError("DecisionRecord.decided_at must be timezone-aware")
        if self.decision.transaction_id != self.transaction.transaction_id:
            raise ValueError(
                f"decision {self.decision.transaction_id!r} is not about "
                f"transaction {self.transaction.transaction_id!r}"
            )
        object.__setattr__(self, "decided_at", self.decided_at.astimezone(UTC))
        if self.features is not None:
            object.__setattr__(self, "features", _finite(self.features))

    @property
    def transaction_id(self) -> str:
        """The id of the transaction decided on: the record's key."""
        return self.decision.transaction_id

    def encode(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (datetimes as ISO 8601 with their offset)."""
        decision = self.decision
        return {
            "decision": {
                "transaction_id": decision.transaction_id,
                "action": decision.action.value,
                "score": float(decision.score),
                "reasons": _encode_reasons(decision.reasons),
                "model_version": decision.model_version,
                "latency_ms": float(decision.latency_ms),
                "degraded": decision.degraded,
                "degraded_reason": decision.degraded_reason,
                "rule_hits": list(decision.rule_hits),
                "source": decision.source,
            },
            "transaction": _encode_transaction(self.transaction),
            "features": self.features,
            "decided_at": self.decided_at.isoformat(),
            "trace_id": self.trace_id,
        }

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> DecisionRecord:
        """The record :meth:`encode` made ``data`` from."""
        decision = data["decision"]
        return cls(
            decision=Decision(
                transaction_id=decision["transaction_id"],
                action=Action(decision["action"]),
                score=float(decision["score"]),
                reasons=_decode_reasons(decision["reasons"]),
                model_version=decision["model_version"],
                latency_ms=float(decision["latency_ms"]),
                degraded=decision["degraded"],
                degraded_reason=decision["degraded_reason"],
                rule_hits=tuple(decision["rule_hits"]),
                source=decision["source"],
            ),
            transaction=_decode_transaction(data["transaction"]),
            features=data["features"],
            decided_at=datetime.fromisoformat(data["decided_at"]),
            trace_id=data["trace_id"],
        )


def encode_label(label: Label) -> dict[str, Any]:
    """A label as a JSON-ready dict."""
    return {
        "transaction_id": label.transaction_id,
        "is_fraud": label.is_fraud,
        "source": label.source.value,
        "known_at": label.known_at.isoformat(),
    }


def decode_label(data: Mapping[str, Any]) -> Label:
    """The label :func:`encode_label` made ``data`` from."""
    return Label(
        transaction_id=data["transaction_id"],
        is_fraud=bool(data["is_fraud"]),
        source=LabelSource(data["source"]),
        known_at=datetime.fromisoformat(data["known_at"]),
    )


class DecisionStore(Protocol):
    """Where decision records and labels are kept for audit and training."""

    def write(self, decisions: Sequence[DecisionRecord], labels: Sequence[Label] = ()) -> None:
        """Store records and labels durably, ignoring ones already stored; StoreError if not."""
        ...

    def get(self, transaction_id: str) -> DecisionRecord | None:
        """The record of one transaction's decision, None if there is none."""
        ...

    def recent(self, limit: int) -> list[DecisionRecord]:
        """The ``limit`` most recently decided records, newest first."""
        ...

    def count(self) -> int:
        """How many decision records are stored."""
        ...

    def ping(self) -> None:
        """Return if the database answers; raise StoreError if not."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SqlDecisionStore:
    """The decision log in SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://…``).

    Written with SQLAlchemy Core, not the ORM: this is the hot write path, and a batch is
    one ``INSERT … ON CONFLICT DO NOTHING`` executemany in one transaction. SQLite runs in
    WAL mode with full sync, so a write is durable when it returns and readers do not block
    the writer; its file's folder is created. PostgreSQL goes through psycopg 3 with a
    connect timeout, and every pooled connection is pinged before use, so a restarted
    database is reconnected rather than failing the next write.

    The tables (:mod:`fraudops.decide.log_schema`) are built and upgraded by the log's
    Alembic migrations when the store is first used; a database made before them is adopted.
    Each record is stamped ``logged_at`` with ``now()`` when written. If the database is down
    when the store is built, the store is still built and the migration is retried by the
    next call, so a service can start (and buffer decisions) during an outage. Every
    database failure is a StoreError.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 2.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url = url
        self._now = now
        self._engine = create_engine(url, what=_WHAT, connect_timeout_s=connect_timeout_s)
        self._schema_lock = threading.Lock()
        self._schema_ready = threading.Event()
        insert = sqlite.insert if self._engine.dialect.name == "sqlite" else postgresql.insert
        self._insert_decisions = insert(log_schema.decisions).on_conflict_do_nothing()
        self._insert_labels = insert(log_schema.labels).on_conflict_do_nothing()
        try:
            self._ensure_schema()
        except StoreError as exc:
            _log.warning("decision_log.schema_deferred", error=str(exc))

    def write(self, decisions: Sequence[DecisionRecord], labels: Sequence[Label] = ()) -> None:
        """Store records and labels in one transaction; already stored ones are ignored."""
        if not decisions and not labels:
            return
        logged_at = self._now().astimezone(UTC)
        decision_rows = [_decision_row(record, logged_at) for record in decisions]
        label_rows = [_label_row(label) for label in labels]
        self._ensure_schema()
        try:
            with self._engine.begin() as connection:
                if decision_rows:
                    connection.execute(self._insert_decisions, decision_rows)
                if label_rows:
                    connection.execute(self._insert_labels, label_rows)
        except SQLAlchemyError as exc:
            raise store_error("write", exc, what=_WHAT) from exc

    def get(self, transaction_id: str) -> DecisionRecord | None:
        """The record of one transaction's decision, None if there is none."""
        self._ensure_schema()
        query = sa.select(log_schema.decisions).where(
            log_schema.decisions.c.transaction_id == transaction_id
        )
        try:
            with self._engine.connect() as connection:
                row = connection.execute(query).mappings().first()
        except SQLAlchemyError as exc:
            raise store_error("get", exc, what=_WHAT) from exc
        return None if row is None else record_from_row(row)

    def recent(self, limit: int) -> list[DecisionRecord]:
        """The ``limit`` most recently decided records, newest first."""
        self._ensure_schema()
        query = (
            sa.select(log_schema.decisions)
            .order_by(log_schema.decisions.c.decided_at.desc())
            .limit(limit)
        )
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise store_error("recent", exc, what=_WHAT) from exc
        return [record_from_row(row) for row in rows]

    def labels(self, transaction_id: str) -> tuple[Label, ...]:
        """The labels stored for one transaction, in the order they were stored."""
        self._ensure_schema()
        query = (
            sa.select(log_schema.labels)
            .where(log_schema.labels.c.transaction_id == transaction_id)
            .order_by(log_schema.labels.c.id)
        )
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise store_error("labels", exc, what=_WHAT) from exc
        return tuple(
            Label(
                transaction_id=row["transaction_id"],
                is_fraud=row["is_fraud"],
                source=LabelSource(row["source"]),
                known_at=as_utc(row["known_at"]),
            )
            for row in rows
        )

    def count(self) -> int:
        """How many decision records are stored."""
        self._ensure_schema()
        try:
            with self._engine.connect() as connection:
                total = connection.execute(
                    sa.select(sa.func.count()).select_from(log_schema.decisions)
                ).scalar_one()
        except SQLAlchemyError as exc:
            raise store_error("count", exc, what=_WHAT) from exc
        return int(total)

    def ping(self) -> None:
        """Return if the database answers; raise StoreError if not."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise store_error("ping", exc, what=_WHAT) from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def _ensure_schema(self) -> None:
        if self._schema_ready.is_set():
            return
        with self._schema_lock:
            if self._schema_ready.is_set():
                return
            try:
                log_schema.migrate(self._engine)
            except SQLAlchemyError as exc:
                raise store_error("migrate the schema", exc, what=_WHAT) from exc
            self._schema_ready.set()


def _finite(features: Mapping[str, float | None]) -> dict[str, float | None]:
    return {
        name: float(value) if value is not None and math.isfinite(value) else None
        for name, value in features.items()
    }


def _encode_reasons(reasons: Sequence[Reason]) -> list[dict[str, Any]]:
    return [{"code": reason.code, "contribution": float(reason.contribution)} for reason in reasons]


def _decode_reasons(data: Sequence[Mapping[str, Any]]) -> tuple[Reason, ...]:
    return tuple(Reason(item["code"], float(item["contribution"])) for item in data)


def _encode_transaction(tx: Transaction) -> dict[str, Any]:
    return {
        "transaction_id": tx.transaction_id,
        "timestamp": tx.timestamp.isoformat(),
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "amount": float(tx.amount),
        "currency": tx.currency,
        "channel": tx.channel,
        "country": tx.country,
        "merchant_category": tx.merchant_category,
        "terminal_x": _optional_float(tx.terminal_x),
        "terminal_y": _optional_float(tx.terminal_y),
    }


def _decode_transaction(data: Mapping[str, Any]) -> Transaction:
    return Transaction(
        transaction_id=data["transaction_id"],
        timestamp=datetime.fromisoformat(data["timestamp"]),
        customer_id=data["customer_id"],
        terminal_id=data["terminal_id"],
        amount=float(data["amount"]),
        currency=data["currency"],
        channel=data["channel"],
        country=data["country"],
        merchant_category=data["merchant_category"],
        terminal_x=_optional_float(data["terminal_x"]),
        terminal_y=_optional_float(data["terminal_y"]),
    )


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _decision_row(record: DecisionRecord, logged_at: datetime) -> dict[str, Any]:
    decision, tx = record.decision, record.transaction
    return {
        "logged_at": logged_at,
        "transaction_id": decision.transaction_id,
        "decided_at": record.decided_at,
        # SQLite stores the wall-clock digits and drops the offset, so always bind UTC.
        "tx_timestamp": tx.timestamp.astimezone(UTC),
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "amount": float(tx.amount),
        "currency": tx.currency,
        "transaction": _encode_transaction(tx),
        "features": record.features,
        "score": float(decision.score),
        "action": decision.action.value,
        "reasons": _encode_reasons(decision.reasons),
        "rule_hits": list(decision.rule_hits),
        "model_version": decision.model_version,
        "source": decision.source,
        "degraded": decision.degraded,
        "degraded_reason": decision.degraded_reason,
        "latency_ms": float(decision.latency_ms),
        "trace_id": record.trace_id,
    }


def _label_row(label: Label) -> dict[str, Any]:
    return {
        "transaction_id": label.transaction_id,
        "is_fraud": label.is_fraud,
        "source": label.source.value,
        "known_at": label.known_at.astimezone(UTC),
    }


def record_from_row(row: sa.RowMapping) -> DecisionRecord:
    """The record a row of the ``decisions`` table holds."""
    return DecisionRecord(
        decision=Decision(
            transaction_id=row["transaction_id"],
            action=Action(row["action"]),
            score=row["score"],
            reasons=_decode_reasons(row["reasons"]),
            model_version=row["model_version"],
            latency_ms=row["latency_ms"],
            degraded=row["degraded"],
            degraded_reason=row["degraded_reason"],
            rule_hits=tuple(row["rule_hits"]),
            source=row["source"],
        ),
        transaction=_decode_transaction(row["transaction"]),
        features=row["features"],
        decided_at=as_utc(row["decided_at"]),
        trace_id=row["trace_id"],
    )
