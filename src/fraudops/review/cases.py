"""Review cases: what an analyst works on, what they decide, and the store's seam.

A case is opened for one decided transaction and is keyed by its transaction id, so
opening the same transaction twice (a replay, a restarted intake) changes nothing. Its
status only moves forward: ``open`` → ``escalated`` → ``closed``, or ``open`` → ``closed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from fraudops.types import Label, LabelSource

if TYPE_CHECKING:
    from fraudops.decide.log import DecisionRecord


class CaseKind(StrEnum):
    """Why a case exists."""

    REVIEW = "review"
    """The policy sent the transaction to review."""
    AUDIT_SAMPLE = "audit_sample"
    """A random sample of approved transactions, so missed fraud can be estimated."""


class CaseStatus(StrEnum):
    """Where a case is in its life."""

    OPEN = "open"
    ESCALATED = "escalated"
    """An analyst passed it to a lead, with a note; only a lead can close it."""
    CLOSED = "closed"


class Verdict(StrEnum):
    """What a person decided about a case."""

    FRAUD = "fraud"
    LEGITIMATE = "legitimate"
    ESCALATE = "escalate"


@dataclass(frozen=True, slots=True)
class CaseOpening:
    """A case to open: the decision record, why it is reviewed, and when it is due."""

    record: DecisionRecord
    kind: CaseKind
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Case:
    """One transaction under review, with everything its decision was made from.

    ``record`` holds the transaction, the served features, the score, reason codes, rule
    hits, degraded flags and model version. ``expected_loss`` is ``score × amount``, the
    queue's order. The SLA clock runs from the decision (the payment waits from then), so
    ``due_at`` is ``decided_at`` plus the SLA even when the case was opened later.
    """

    transaction_id: str
    kind: CaseKind
    status: CaseStatus
    card_id: str
    terminal_id: str
    amount: float
    score: float
    expected_loss: float
    record: DecisionRecord
    decided_at: datetime
    opened_at: datetime
    due_at: datetime
    locked_by: str | None = None
    locked_until: datetime | None = None
    escalated_by: str | None = None
    escalated_at: datetime | None = None
    escalation_note: str | None = None
    verdict: Verdict | None = None
    verdict_by: str | None = None
    verdict_at: datetime | None = None
    verdict_note: str | None = None

    def lock_holder(self, now: datetime) -> str | None:
        """Who holds the case's lock at ``now``; None when it is free or expired."""
        if self.locked_by is None or self.locked_until is None or self.locked_until <= now:
            return None
        return self.locked_by

    def overdue(self, now: datetime) -> bool:
        """Whether the case is still waiting for a verdict past its due time."""
        return self.status is not CaseStatus.CLOSED and now > self.due_at

    def time_left(self, now: datetime) -> timedelta:
        """Time until the case is due (negative once overdue)."""
        return self.due_at - now

    @property
    def label(self) -> Label | None:
        """The label the closing verdict made (source analyst, known when it was given)."""
        if self.verdict is None or self.verdict is Verdict.ESCALATE or self.verdict_at is None:
            return None
        return verdict_label(self.transaction_id, self.verdict, self.verdict_at)


def verdict_label(transaction_id: str, verdict: Verdict, at: datetime) -> Label:
    """The label a fraud or legitimate verdict given at ``at`` makes."""
    if verdict is Verdict.ESCALATE:
        raise ValueError("an escalation is not a label")
    return Label(
        transaction_id=transaction_id,
        is_fraud=verdict is Verdict.FRAUD,
        source=LabelSource.ANALYST,
        known_at=at,
    )


@dataclass(frozen=True, slots=True)
class CaseGroup:
    """The open cases of one card, highest expected loss first."""

    card_id: str
    cases: tuple[Case, ...]

    @property
    def max_expected_loss(self) -> float:
        """The group's place in the queue: its costliest case."""
        return max(case.expected_loss for case in self.cases)

    def overdue(self, now: datetime) -> int:
        """How many of the group's cases are past due."""
        return sum(case.overdue(now) for case in self.cases)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How the queue stands: what waits, what is late, what came in today."""

    open: int
    escalated: int
    overdue: int
    oldest_decided_at: datetime | None
    opened_today: int
    """Review cases (not audit samples) decided since midnight UTC."""
    open_cards: int = 0
    """Cards with an open case: the groups of the open queue."""
    escalated_cards: int = 0
    """Cards with an escalated case: the groups of the leads' queue."""


@dataclass(frozen=True, slots=True)
class IntakeCursor:
    """How far the intake has read the decision log: the last record it handled, by when
    the log wrote it."""

    logged_at: datetime
    transaction_id: str


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What a verdict did to a case; ``first`` is False for a repeat of the same verdict.

    ``closed`` names the payments disowned with the verdict whose own cases it closed.
    """

    case: Case
    first: bool
    closed: tuple[str, ...] = ()


class CaseStore(Protocol):
    """Where review cases are kept; every method is safe to call from several replicas.

    A verdict or escalation writes its audit entry in the same transaction as the case,
    so neither is ever done without its record.
    """

    def open_cases(self, openings: Sequence[CaseOpening], now: datetime) -> list[str]:
        """Open cases not yet open; the transaction ids actually opened (idempotent)."""
        ...

    def get(self, transaction_id: str) -> Case:
        """The case of one transaction; CaseNotFoundError if there is none."""
        ...

    def queue(
        self,
        *,
        statuses: Sequence[CaseStatus] = (CaseStatus.OPEN,),
        kinds: Sequence[CaseKind] = (CaseKind.REVIEW, CaseKind.AUDIT_SAMPLE),
        limit_groups: int = 50,
        offset_groups: int = 0,
    ) -> list[CaseGroup]:
        """Waiting cases grouped by card, groups by their max expected loss, highest first;
        paged in whole groups."""
        ...

    def stats(self, now: datetime) -> QueueStats:
        """Queue depth, overdue count, oldest waiting case and today's inflow."""
        ...

    def lock(self, transaction_id: str, user: str, now: datetime, ttl: timedelta) -> Case:
        """Lock the case to ``user`` until ``now + ttl`` (renews their own lock).

        LockedError if another user holds it; CaseClosedError if it is closed.
        """
        ...

    def unlock(self, transaction_id: str, user: str) -> None:
        """Release ``user``'s lock on the case (nothing if they do not hold it)."""
        ...

    def claim_next(
        self,
        user: str,
        now: datetime,
        ttl: timedelta,
        *,
        statuses: Sequence[CaseStatus] = (CaseStatus.OPEN,),
        kinds: Sequence[CaseKind] = (CaseKind.REVIEW, CaseKind.AUDIT_SAMPLE),
    ) -> Case | None:
        """Lock the first case in queue order whose card nobody else is working; None if
        there is none."""
        ...

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
        """Record a fraud/legitimate verdict and close the case, or escalate it.

        The same verdict again is a repeat (``first=False``, nothing changes). Refused with
        CaseNotFoundError, CaseClosedError (another verdict stands), LockedError (another
        user holds the lock) or PermissionDeniedError (an escalated case, without
        ``may_resolve_escalated``).

        ``disowned`` (with a fraud or legitimate verdict only) are earlier payments on the
        card that the cardholder, reached on this case, says were not theirs. With the
        verdict, in one transaction, each is audited as a fraud verdict by ``user`` and its
        own waiting case, if it has one, is closed as fraud, unless another user holds it.
        A payment whose case is escalated refuses the whole verdict with
        PermissionDeniedError unless ``may_resolve_escalated``: nothing is recorded.
        """
        ...

    def inflow(self, since: datetime, until: datetime) -> int:
        """How many review cases (not audit samples) were decided in ``[since, until)``."""
        ...

    def cursor(self, name: str) -> IntakeCursor | None:
        """The saved position of intake ``name``; None before its first run."""
        ...

    def save_cursor(self, name: str, cursor: IntakeCursor, now: datetime) -> None:
        """Save the position of intake ``name``."""
        ...

    def ping(self) -> None:
        """Return if the store answers; StoreError if not."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
