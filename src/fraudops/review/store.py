"""The case store in SQL: SQLite by default, PostgreSQL by URL, the same code for both.

Every change that must not race is one conditional UPDATE (``… WHERE status = 'open' AND
the lock is free or mine``) whose row count says whether it happened, so two analysts or
two replicas can never both win; when it did not happen, the case is read back to say why
(missing, closed, locked by whom). Opening cases is ``INSERT … ON CONFLICT DO NOTHING``,
so it is idempotent by transaction id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fraudops.decide.log import DecisionRecord
from fraudops.errors import (
    CaseClosedError,
    CaseNotFoundError,
    InputError,
    LockedError,
    PermissionDeniedError,
)
from fraudops.review import _schema
from fraudops.review.audit import AuditAction, AuditEntry, insert_entry
from fraudops.review.cases import (
    Case,
    CaseGroup,
    CaseKind,
    CaseOpening,
    CaseStatus,
    CloseResult,
    IntakeCursor,
    QueueStats,
    Verdict,
)
from fraudops.review.database import ReviewDatabase
from fraudops.sql import as_utc, utc

_cases = _schema.cases
_CLAIM_GROUPS = 20
_CLAIM_PAGES = 10


class SqlCaseStore:
    """Review cases in the review database; see :class:`~fraudops.review.cases.CaseStore`."""

    def __init__(self, database: ReviewDatabase) -> None:
        self._db = database
        dialect_insert = sqlite.insert if database.dialect == "sqlite" else postgresql.insert
        self._insert_cases = (
            dialect_insert(_cases).on_conflict_do_nothing().returning(_cases.c.transaction_id)
        )
        cursor_insert = dialect_insert(_schema.intake_cursors)
        self._upsert_cursor = cursor_insert.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "logged_at": cursor_insert.excluded.logged_at,
                "transaction_id": cursor_insert.excluded.transaction_id,
                "updated_at": cursor_insert.excluded.updated_at,
            },
        )

    # ------------------------------------------------------------------ cases

    def open_cases(self, openings: Sequence[CaseOpening], now: datetime) -> list[str]:
        """Open cases not yet open; the transaction ids actually opened, in input order."""
        rows: dict[str, dict[str, Any]] = {}
        for opening in openings:
            rows.setdefault(opening.record.transaction_id, _case_row(opening, now))
        if not rows:
            return []
        with self._db.begin("open cases") as connection:
            # RETURNING gives only the rows this statement inserted: exact even when two
            # intakes open the same transactions at once.
            opened = set(connection.execute(self._insert_cases, list(rows.values())).scalars())
        return [transaction_id for transaction_id in rows if transaction_id in opened]

    def get(self, transaction_id: str) -> Case:
        """The case of one transaction; CaseNotFoundError if there is none."""
        with self._db.begin("read a case") as connection:
            return _read(connection, transaction_id)

    def queue(
        self,
        *,
        statuses: Sequence[CaseStatus] = (CaseStatus.OPEN,),
        kinds: Sequence[CaseKind] = (CaseKind.REVIEW, CaseKind.AUDIT_SAMPLE),
        limit_groups: int = 50,
        offset_groups: int = 0,
    ) -> list[CaseGroup]:
        """Waiting cases grouped by card, groups by their max expected loss, highest first.

        Within a group, cases come by expected loss, highest first. The answer is paged in
        whole groups (``limit_groups`` after skipping ``offset_groups``), so a card's cases
        are never split across pages.
        """
        if limit_groups < 1 or offset_groups < 0:
            raise InputError(
                f"limit_groups must be ≥ 1 and offset_groups ≥ 0, got {limit_groups}"
                f" and {offset_groups}"
            )
        waiting = _waiting(statuses, kinds)
        with self._db.begin("read the queue") as connection:
            cards = _top_cards(connection, waiting, limit_groups, offset_groups)
            if not cards:
                return []
            rows = connection.execute(_cases_of(cards, waiting)).mappings().all()
        by_card: dict[str, list[Case]] = {card: [] for card in cards}
        for row in rows:
            by_card[row["card_id"]].append(_case_from_row(row))
        # A card whose cases closed between the two reads has no group left.
        return [CaseGroup(card, tuple(cases)) for card, cases in by_card.items() if cases]

    def stats(self, now: datetime) -> QueueStats:
        """Queue depth, overdue count, oldest waiting case and today's inflow."""
        at = utc(now)
        waiting = _cases.c.status != CaseStatus.CLOSED.value
        is_open = _cases.c.status == CaseStatus.OPEN.value
        is_escalated = _cases.c.status == CaseStatus.ESCALATED.value
        query = sa.select(
            _count(is_open),
            _count(is_escalated),
            _count(waiting & (_cases.c.due_at < at)),
            sa.func.min(sa.case((waiting, _cases.c.decided_at))),
            _cards(is_open),
            _cards(is_escalated),
        )
        with self._db.begin("read queue stats") as connection:
            row = connection.execute(query).one()
        open_, escalated, overdue, oldest, open_cards, escalated_cards = row
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return QueueStats(
            open=int(open_ or 0),
            escalated=int(escalated or 0),
            overdue=int(overdue or 0),
            oldest_decided_at=None if oldest is None else as_utc(oldest),
            opened_today=self.inflow(midnight, at + timedelta(microseconds=1)),
            open_cards=int(open_cards or 0),
            escalated_cards=int(escalated_cards or 0),
        )

    def inflow(self, since: datetime, until: datetime) -> int:
        """How many review cases (not audit samples) were decided in ``[since, until)``."""
        query = sa.select(sa.func.count()).where(
            _cases.c.kind == CaseKind.REVIEW.value,
            _cases.c.decided_at >= utc(since),
            _cases.c.decided_at < utc(until),
        )
        with self._db.begin("count inflow") as connection:
            return int(connection.execute(query).scalar_one())

    # ------------------------------------------------------------------ locks

    def lock(self, transaction_id: str, user: str, now: datetime, ttl: timedelta) -> Case:
        """Lock the case to ``user`` until ``now + ttl`` (renews their own lock)."""
        with self._db.begin("lock a case") as connection:
            return _lock(connection, transaction_id, user, utc(now), ttl)

    def unlock(self, transaction_id: str, user: str) -> None:
        """Release ``user``'s lock on the case (nothing if they do not hold it)."""
        with self._db.begin("unlock a case") as connection:
            connection.execute(
                sa.update(_cases)
                .where(_cases.c.transaction_id == transaction_id, _cases.c.locked_by == user)
                .values(locked_by=None, locked_until=None)
            )

    def claim_next(
        self,
        user: str,
        now: datetime,
        ttl: timedelta,
        *,
        statuses: Sequence[CaseStatus] = (CaseStatus.OPEN,),
        kinds: Sequence[CaseKind] = (CaseKind.REVIEW, CaseKind.AUDIT_SAMPLE),
    ) -> Case | None:
        """Lock the first case in queue order whose card nobody else is working.

        A card with any case locked by another analyst is skipped, so one person works a
        card's cases together. Looks through the first ``_CLAIM_PAGES`` pages of
        ``_CLAIM_GROUPS`` cards; None if every card there is taken or nothing waits.
        """
        at = utc(now)
        waiting = _waiting(statuses, kinds)
        columns = (_cases.c.transaction_id, _cases.c.card_id, _cases.c.locked_by)
        for page in range(_CLAIM_PAGES):
            with self._db.begin("claim a case") as connection:
                cards = _top_cards(connection, waiting, _CLAIM_GROUPS, page * _CLAIM_GROUPS)
                if not cards:
                    return None
                rows = connection.execute(
                    _cases_of(cards, waiting, columns).add_columns(
                        _held_by_other(user, at).label("held")
                    )
                ).all()
            taken = {row.card_id for row in rows if row.held}
            for row in rows:
                if row.card_id in taken:
                    continue
                try:
                    with self._db.begin("claim a case") as connection:
                        return _lock(connection, row.transaction_id, user, at, ttl)
                except (LockedError, CaseClosedError):
                    taken.add(row.card_id)  # another analyst got there between read and lock
        return None

    # ------------------------------------------------------------------ verdicts

    def record_verdict(
        self,
        transaction_id: str,
        verdict: Verdict,
        user: str,
        note: str,
        now: datetime,
        *,
        may_resolve_escalated: bool,
        disowned: Sequence[str] = (),
    ) -> CloseResult:
        """Close the case with a fraud/legitimate verdict, or escalate it; audited at once.

        The payments in ``disowned`` are recorded in the same transaction (see
        :meth:`~fraudops.review.cases.CaseStore.record_verdict`): a refusal of any of them
        rolls the verdict back too.
        """
        at = utc(now)
        if verdict is Verdict.ESCALATE:
            if disowned:
                raise InputError("disown the card's payments with a verdict, not an escalation")
            allowed = [CaseStatus.OPEN.value]
            values: dict[str, Any] = {
                "status": CaseStatus.ESCALATED.value,
                "escalated_by": user,
                "escalated_at": at,
                "escalation_note": note,
            }
            action = AuditAction.ESCALATION
        else:
            allowed = _closable(may_resolve_escalated)
            values = _closing(verdict, user, at, note)
            action = AuditAction.VERDICT
        # The UPDATE comes first in the transaction: it takes the write lock before any read,
        # so SQLite never finds its read snapshot stale when it comes to write.
        with self._db.begin("record a verdict") as connection:
            applied = connection.execute(_change(transaction_id, allowed, user, at, values))
            case = _read(connection, transaction_id)
            if applied.rowcount == 1:
                details = {"disowned": list(disowned)} if disowned else {}
                entry = _verdict_entry(case, verdict, action, user, note, at, details)
                insert_entry(connection, entry)
                closed = _disown(connection, case, disowned, user, at, may_resolve_escalated)
                return CloseResult(case, first=True, closed=closed)
        return _refusal_or_repeat(case, verdict, user, at, may_resolve_escalated)

    # ------------------------------------------------------------------ intake cursor

    def cursor(self, name: str) -> IntakeCursor | None:
        """The saved position of intake ``name``; None before its first run."""
        table = _schema.intake_cursors
        with self._db.begin("read the intake cursor") as connection:
            row = connection.execute(sa.select(table).where(table.c.name == name)).first()
        if row is None:
            return None
        return IntakeCursor(as_utc(row.logged_at), row.transaction_id)

    def save_cursor(self, name: str, cursor: IntakeCursor, now: datetime) -> None:
        """Save the position of intake ``name``."""
        with self._db.begin("save the intake cursor") as connection:
            connection.execute(
                self._upsert_cursor,
                {
                    "name": name,
                    "logged_at": utc(cursor.logged_at),
                    "transaction_id": cursor.transaction_id,
                    "updated_at": utc(now),
                },
            )

    def ping(self) -> None:
        """Return if the database answers; StoreError if not."""
        self._db.ping()

    def close(self) -> None:
        """Release connections."""
        self._db.close()


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _cards(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """How many cards have a case meeting ``condition`` (NULLs are not counted)."""
    return sa.func.count(sa.distinct(sa.case((condition, _cases.c.card_id))))


def _free_or_mine(
    locked_by: sa.ColumnElement[Any], locked_until: sa.ColumnElement[Any], user: str, at: datetime
) -> sa.ColumnElement[bool]:
    return sa.or_(locked_by.is_(None), locked_by == user, locked_until <= at)


def _waiting(statuses: Sequence[CaseStatus], kinds: Sequence[CaseKind]) -> sa.ColumnElement[bool]:
    return sa.and_(
        _cases.c.status.in_([status.value for status in statuses]),
        _cases.c.kind.in_([kind.value for kind in kinds]),
    )


def _top_cards(
    connection: sa.Connection, waiting: sa.ColumnElement[bool], limit: int, offset: int
) -> list[str]:
    """The cards of one page of the queue, costliest group first.

    Ranking cards by one aggregate, then reading only their cases, keeps the wide rows
    (the decision record) out of the sort: a page of 50 cards over 50 000 waiting cases
    takes milliseconds rather than the second a window over whole rows took.
    """
    group_loss = sa.func.max(_cases.c.expected_loss)
    query = (
        sa.select(_cases.c.card_id)
        .where(waiting)
        .group_by(_cases.c.card_id)
        .order_by(group_loss.desc(), _cases.c.card_id)
        .limit(limit)
        .offset(offset)
    )
    return list(connection.execute(query).scalars())


def _cases_of(
    cards: Sequence[str],
    waiting: sa.ColumnElement[bool],
    columns: Sequence[sa.ColumnElement[Any]] | None = None,
) -> sa.Select[Any]:
    """The waiting cases of ``cards``, in the cards' order, costliest case first."""
    rank = sa.case({card: index for index, card in enumerate(cards)}, value=_cases.c.card_id)
    return (
        sa.select(*(columns if columns is not None else (_cases,)))
        .where(waiting, _cases.c.card_id.in_(cards))
        .order_by(rank, _cases.c.expected_loss.desc(), _cases.c.transaction_id)
    )


def _held_by_other(user: str, at: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        _cases.c.locked_by.is_not(None), _cases.c.locked_by != user, _cases.c.locked_until > at
    )


def _lock(
    connection: sa.Connection, transaction_id: str, user: str, at: datetime, ttl: timedelta
) -> Case:
    if ttl <= timedelta(0):
        raise InputError(f"a lock must last a positive time, got {ttl}")
    update = (
        sa.update(_cases)
        .where(
            _cases.c.transaction_id == transaction_id,
            _cases.c.status != CaseStatus.CLOSED.value,
            _free_or_mine(_cases.c.locked_by, _cases.c.locked_until, user, at),
        )
        .values(locked_by=user, locked_until=at + ttl)
    )
    # Twice at most: a lock released between the UPDATE and the read is free to take now.
    for _ in range(2):
        applied = connection.execute(update).rowcount == 1
        case = _read(connection, transaction_id)
        if applied:
            return case
        if case.status is CaseStatus.CLOSED:
            raise CaseClosedError(_closed_message(case))
        holder = case.lock_holder(at)
        if holder is not None and case.locked_until is not None:
            raise LockedError(transaction_id, holder, case.locked_until)
    raise CaseClosedError(f"case {transaction_id!r} keeps changing; reload it")


def _closable(may_resolve_escalated: bool) -> list[str]:
    """The statuses a fraud/legitimate verdict may close."""
    if may_resolve_escalated:
        return [CaseStatus.OPEN.value, CaseStatus.ESCALATED.value]
    return [CaseStatus.OPEN.value]


def _closing(verdict: Verdict, user: str, at: datetime, note: str) -> dict[str, Any]:
    return {
        "status": CaseStatus.CLOSED.value,
        "verdict": verdict.value,
        "verdict_by": user,
        "verdict_at": at,
        "verdict_note": note,
    }


def _change(
    transaction_id: str, allowed: Sequence[str], user: str, at: datetime, values: dict[str, Any]
) -> sa.Update:
    """The conditional UPDATE of a verdict: only from ``allowed`` statuses, only if the
    lock is free or ``user``'s; it releases the lock."""
    return (
        sa.update(_cases)
        .where(
            _cases.c.transaction_id == transaction_id,
            _cases.c.status.in_(allowed),
            _free_or_mine(_cases.c.locked_by, _cases.c.locked_until, user, at),
        )
        .values(locked_by=None, locked_until=None, **values)
    )


def _disown(
    connection: sa.Connection,
    case: Case,
    disowned: Sequence[str],
    user: str,
    at: datetime,
    may_resolve_escalated: bool,
) -> tuple[str, ...]:
    """Record the payments the cardholder disowned on ``case``: each a fraud verdict by
    ``user`` in the audit trail, its own waiting case closed as fraud where ``user`` may;
    the payments whose cases were closed. PermissionDeniedError (and so a rollback) for a
    payment whose case is escalated, unless ``user`` may resolve escalations."""
    reason = f"disowned by the cardholder of {case.card_id}, reached on case {case.transaction_id}"
    on = {"case": case.transaction_id, "card": case.card_id}
    closed: list[str] = []
    for transaction_id in disowned:
        own = _find(connection, transaction_id)
        _refuse_if_escalated(own, may_resolve_escalated)
        entry = AuditEntry(
            at, user, AuditAction.VERDICT, transaction_id, reason, {"verdict": "fraud", **on}
        )
        if own is not None and own.status is not CaseStatus.CLOSED:
            allowed = _closable(may_resolve_escalated)
            values = _closing(Verdict.FRAUD, user, at, reason)
            change = _change(transaction_id, allowed, user, at, values)
            if connection.execute(change).rowcount == 1:
                own = _read(connection, transaction_id)
                action = AuditAction.VERDICT
                entry = _verdict_entry(own, Verdict.FRAUD, action, user, reason, at, on)
                closed.append(transaction_id)
            else:  # held by another analyst, or escalated since it was read
                _refuse_if_escalated(_find(connection, transaction_id), may_resolve_escalated)
        insert_entry(connection, entry)
    return tuple(closed)


def _refuse_if_escalated(own: Case | None, may_resolve_escalated: bool) -> None:
    """PermissionDeniedError if ``own`` (a disowned payment's case) waits for a lead and the
    user may not resolve escalations."""
    if own is not None and own.status is CaseStatus.ESCALATED and not may_resolve_escalated:
        raise PermissionDeniedError(
            f"{own.transaction_id} is escalated to a lead (by {own.escalated_by}): only a lead"
            " can give it a verdict, so it cannot be disowned with yours. Untick it and"
            " tell the lead what the cardholder said; nothing was recorded."
        )


def _verdict_entry(
    case: Case,
    verdict: Verdict,
    action: AuditAction,
    user: str,
    note: str,
    at: datetime,
    extra: dict[str, Any],
) -> AuditEntry:
    # A case closed after an escalation keeps who escalated it: that was its status before.
    escalated = verdict is not Verdict.ESCALATE and case.escalated_by is not None
    return AuditEntry(
        at=at,
        actor=user,
        action=action,
        subject=case.transaction_id,
        reason=note,
        details={
            "verdict": verdict.value,
            "kind": case.kind.value,
            "previous_status": (CaseStatus.ESCALATED if escalated else CaseStatus.OPEN).value,
            "score": case.score,
            "amount": case.amount,
            "model_version": case.record.decision.model_version,
            **extra,
        },
    )


def _refusal_or_repeat(
    case: Case, verdict: Verdict, user: str, at: datetime, may_resolve_escalated: bool
) -> CloseResult:
    """Why a verdict did not apply: a repeat of what stands, or the error that refuses it."""
    if verdict is Verdict.ESCALATE:
        if case.status is CaseStatus.ESCALATED:
            return CloseResult(case, first=False)
    elif case.status is CaseStatus.CLOSED and case.verdict is verdict:
        return CloseResult(case, first=False)
    if case.status is CaseStatus.CLOSED:
        raise CaseClosedError(_closed_message(case))
    if case.status is CaseStatus.ESCALATED and not may_resolve_escalated:
        raise PermissionDeniedError(
            f"case {case.transaction_id!r} was escalated by {case.escalated_by!r}:"
            " only a lead can give its verdict"
        )
    holder = case.lock_holder(at)
    if holder is not None and holder != user and case.locked_until is not None:
        raise LockedError(case.transaction_id, holder, case.locked_until)
    # The row changed between the UPDATE and the read: say so rather than guess.
    raise CaseClosedError(f"case {case.transaction_id!r} changed meanwhile; reload it")


def _closed_message(case: Case) -> str:
    when = f"{case.verdict_at:%Y-%m-%d %H:%M:%S} UTC" if case.verdict_at else "an unknown time"
    return (
        f"case {case.transaction_id!r} is closed: {case.verdict} by {case.verdict_by!r} at {when}"
    )


def _read(connection: sa.Connection, transaction_id: str) -> Case:
    case = _find(connection, transaction_id)
    if case is None:
        raise CaseNotFoundError(transaction_id)
    return case


def _find(connection: sa.Connection, transaction_id: str) -> Case | None:
    row = (
        connection.execute(sa.select(_cases).where(_cases.c.transaction_id == transaction_id))
        .mappings()
        .first()
    )
    return None if row is None else _case_from_row(row)


def _case_row(opening: CaseOpening, now: datetime) -> dict[str, Any]:
    record, tx = opening.record, opening.record.transaction
    score = float(record.decision.score)
    return {
        "transaction_id": record.transaction_id,
        "kind": opening.kind.value,
        "status": CaseStatus.OPEN.value,
        "card_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "amount": float(tx.amount),
        "score": score,
        "expected_loss": score * float(tx.amount),
        "record": record.encode(),
        "decided_at": record.decided_at.astimezone(UTC),
        "opened_at": utc(now),
        "due_at": utc(opening.due_at),
    }


def _optional_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _case_from_row(row: sa.RowMapping) -> Case:
    return Case(
        transaction_id=row["transaction_id"],
        kind=CaseKind(row["kind"]),
        status=CaseStatus(row["status"]),
        card_id=row["card_id"],
        terminal_id=row["terminal_id"],
        amount=row["amount"],
        score=row["score"],
        expected_loss=row["expected_loss"],
        record=DecisionRecord.decode(row["record"]),
        decided_at=as_utc(row["decided_at"]),
        opened_at=as_utc(row["opened_at"]),
        due_at=as_utc(row["due_at"]),
        locked_by=row["locked_by"],
        locked_until=_optional_time(row["locked_until"]),
        escalated_by=row["escalated_by"],
        escalated_at=_optional_time(row["escalated_at"]),
        escalation_note=row["escalation_note"],
        verdict=None if row["verdict"] is None else Verdict(row["verdict"]),
        verdict_by=row["verdict_by"],
        verdict_at=_optional_time(row["verdict_at"]),
        verdict_note=row["verdict_note"],
    )
