"""The audit trail: every human action and every automated change, append-only.

Recorded are verdicts and escalations, model promotions and rollbacks, rule and threshold
changes, user changes, and changes of model or thresholds that the system made on its own
(``actor`` then starts with ``system:``). Each entry says who, when, what (``action`` on
``subject``), why (``reason``) and the details as a JSON object.

Append-only twice over: this module has no update or delete path, and the migration
installs triggers that make the database refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

import orjson
import sqlalchemy as sa

from fraudops.errors import InputError
from fraudops.review import _schema
from fraudops.review.database import ReviewDatabase
from fraudops.sql import as_utc, utc

SYSTEM_PREFIX = "system:"
"""Actors that are not people: ``system:intake``, ``system:retrain``…"""


class AuditAction(StrEnum):
    """What was done."""

    VERDICT = "verdict"
    ESCALATION = "escalation"
    PROMOTION = "promotion"
    ROLLBACK = "rollback"
    RULE_CHANGE = "rule_change"
    THRESHOLD_CHANGE = "threshold_change"
    MODEL_CHANGE = "model_change"
    USER_CHANGE = "user_change"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action: who did what to which subject, when, why, with details.

    ``id`` is given by the trail when the entry is recorded (None before); ids grow with
    every entry, so ``after_id`` pages through the trail without gaps or repeats.
    """

    at: datetime
    actor: str
    action: AuditAction
    subject: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("AuditEntry.at must be timezone-aware")
        if not self.actor.strip():
            raise InputError("an audit entry needs an actor (a username or system:<part>)")
        if not self.subject.strip():
            raise InputError(f"an audit entry for {self.action} needs a subject")

    @property
    def automated(self) -> bool:
        """Whether the system, not a person, did this."""
        return self.actor.startswith(SYSTEM_PREFIX)

    def as_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict (the time in ISO 8601 UTC)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action.value,
            "subject": self.subject,
            "reason": self.reason,
            "details": dict(self.details),
        }


class AuditTrail(Protocol):
    """Where audit entries are kept. There is deliberately no way to change or remove one."""

    def record(self, entry: AuditEntry) -> AuditEntry:
        """Append ``entry``; it comes back with its id."""
        ...

    def entries(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        action: AuditAction | None = None,
        subject: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries matching every filter given, oldest first."""
        ...

    def export(
        self, format: Literal["csv", "jsonl"], *, since: datetime | None = None
    ) -> Iterator[str]:
        """The trail from ``since`` as CSV (header first) or JSON lines, chunk by chunk."""
        ...


def insert_entry(connection: sa.Connection, entry: AuditEntry) -> AuditEntry:
    """Append ``entry`` inside the caller's transaction (so an action and its record commit
    together); it comes back with its id."""
    result = connection.execute(
        sa.insert(_schema.audit).returning(_schema.audit.c.id),
        {
            "at": utc(entry.at),
            "actor": entry.actor,
            "action": entry.action.value,
            "subject": entry.subject,
            "reason": entry.reason,
            "details": dict(entry.details),
        },
    )
    return AuditEntry(
        at=utc(entry.at),
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        reason=entry.reason,
        details=dict(entry.details),
        id=int(result.scalar_one()),
    )


_EXPORT_PAGE = 1000
_FORMULA_STARTS = frozenset("=+-@\t\r")
_CSV_COLUMNS = ("id", "at", "actor", "action", "subject", "reason", "details")


class SqlAuditTrail:
    """The audit trail in the review database (``review_audit``)."""

    def __init__(self, database: ReviewDatabase) -> None:
        self._db = database

    def record(self, entry: AuditEntry) -> AuditEntry:
        """Append ``entry``; it comes back with its id."""
        with self._db.begin("record an audit entry") as connection:
            return insert_entry(connection, entry)

    def entries(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        action: AuditAction | None = None,
        subject: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries matching every filter given, oldest first (by id)."""
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        table = _schema.audit
        query = sa.select(table).order_by(table.c.id).limit(limit)
        if since is not None:
            query = query.where(table.c.at >= utc(since))
        if actor is not None:
            query = query.where(table.c.actor == actor)
        if action is not None:
            query = query.where(table.c.action == action.value)
        if subject is not None:
            query = query.where(table.c.subject == subject)
        if after_id is not None:
            query = query.where(table.c.id > after_id)
        with self._db.begin("read the audit trail") as connection:
            rows = connection.execute(query).mappings().all()
        return [_entry_from_row(row) for row in rows]

    def export(
        self, format: Literal["csv", "jsonl"], *, since: datetime | None = None
    ) -> Iterator[str]:
        """The trail from ``since`` as CSV (header first) or JSON lines, page by page.

        Each chunk is whole lines; read in pages by id, so an export of a long trail holds
        one page in memory and entries appended meanwhile are included in order.
        """
        if format not in ("csv", "jsonl"):
            raise InputError(f"audit export format must be csv or jsonl, got {format!r}")
        if format == "csv":
            yield _csv_line(_CSV_COLUMNS)
        after: int | None = None
        while True:
            page = self.entries(since=since, after_id=after, limit=_EXPORT_PAGE)
            if not page:
                return
            if format == "jsonl":
                yield "".join(orjson.dumps(e.as_dict()).decode() + "\n" for e in page)
            else:
                yield "".join(_csv_line(_csv_row(e)) for e in page)
            after = page[-1].id
            if len(page) < _EXPORT_PAGE:
                return


def _entry_from_row(row: sa.RowMapping) -> AuditEntry:
    return AuditEntry(
        at=as_utc(row["at"]),
        actor=row["actor"],
        action=AuditAction(row["action"]),
        subject=row["subject"],
        reason=row["reason"],
        details=row["details"],
        id=int(row["id"]),
    )


def _csv_row(entry: AuditEntry) -> tuple[str, ...]:
    return (
        str(entry.id),
        entry.at.isoformat(),
        _inert(entry.actor),
        entry.action.value,
        _inert(entry.subject),
        _inert(entry.reason),
        orjson.dumps(dict(entry.details), option=orjson.OPT_SORT_KEYS).decode(),
    )


def _inert(text: str) -> str:
    # A note that starts like a formula must not run when the export is opened in a
    # spreadsheet (CSV injection); a leading apostrophe keeps it text.
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def _csv_line(values: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()
