"""Cases from decisions: which decisions become cases, and the worker that opens them.

``review`` decisions become review cases. A small, fixed share of ``approve`` decisions
becomes audit-sample cases, so missed fraud can be estimated (otherwise every label would
come from what the model already suspected). The sample is chosen by a hash of the
transaction id, not a random draw, so a replay or a second replica picks the same ones.

:class:`CaseIntake` tails the decision log rather than sitting on the decision path: the
decision log is already durable (buffered, and spilled to disk while its database is
down), so an outage of the case store only delays cases, which appear once it returns, and
never slows or fails a decision. The intake keeps its cursor in the case store.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from fraudops.clock import Clock
from fraudops.errors import FraudopsError, InputError
from fraudops.review.cases import CaseKind, CaseOpening, CaseStore, IntakeCursor
from fraudops.review.decisions import DecisionReader
from fraudops.types import Action

if TYPE_CHECKING:
    from fraudops.decide.log import DecisionRecord

_log = structlog.get_logger("fraudops.review.intake")
_HASH_SPACE = float(2**64)


def audit_sampled(transaction_id: str, rate: float) -> bool:
    """Whether an approved transaction falls in the audit sample of share ``rate``.

    Deterministic: the first 8 bytes of the id's SHA-256 as a fraction of 2^64, below
    ``rate``. Ids are hashed, so any id scheme (sequential or not) samples evenly.
    """
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"audit sample rate must lie in [0, 1], got {rate}")
    digest = hashlib.sha256(transaction_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE < rate


def case_openings(
    records: Sequence[DecisionRecord], *, audit_sample_rate: float, sla: timedelta
) -> list[CaseOpening]:
    """The cases ``records`` call for: every review, and the sampled approvals.

    A case is due ``sla`` after its decision. Declines open no case: the payment is
    already stopped, and the decline itself is reviewed through disputes.
    """
    openings = []
    for record in records:
        action = record.decision.action
        if action is Action.REVIEW:
            kind = CaseKind.REVIEW
        elif action is Action.APPROVE and audit_sampled(record.transaction_id, audit_sample_rate):
            kind = CaseKind.AUDIT_SAMPLE
        else:
            continue
        openings.append(CaseOpening(record, kind, record.decided_at + sla))
    return openings


def open_cases(
    store: CaseStore,
    records: Sequence[DecisionRecord],
    *,
    audit_sample_rate: float,
    sla: timedelta,
    clock: Clock,
) -> list[str]:
    """Open the cases ``records`` call for; the transaction ids newly opened (idempotent)."""
    openings = case_openings(records, audit_sample_rate=audit_sample_rate, sla=sla)
    return store.open_cases(openings, clock.now()) if openings else []


@dataclass(frozen=True, slots=True)
class IntakeReport:
    """What one pass of the intake did."""

    read: int
    opened: int
    cursor: IntakeCursor | None

    def __add__(self, other: IntakeReport) -> IntakeReport:
        return IntakeReport(self.read + other.read, self.opened + other.opened, other.cursor)


class CaseIntake:
    """Opens cases from the decision log as it grows, resuming from a saved cursor.

    The intake follows the order the log *wrote* records in (``logged_at``), not the order
    they were decided in, so a decision that reaches the log late (buffered, or replayed
    from the spill files after an outage of the log's database, or from a replica that lost
    its connection for a while) is still ahead of the cursor and gets its case. Only
    records written more than ``settle`` ago are read, so writers' clocks may disagree by
    up to that much, and a transaction still committing when the intake passes is not
    skipped. :meth:`backfill` opens the cases of a window of decision times again (say,
    after a change of the audit sample rate); opening is idempotent.
    """

    def __init__(
        self,
        reader: DecisionReader,
        store: CaseStore,
        clock: Clock,
        *,
        audit_sample_rate: float,
        sla: timedelta,
        settle: timedelta = timedelta(seconds=30),
        batch_size: int = 500,
        name: str = "decisions",
    ) -> None:
        if batch_size < 1:
            raise InputError(f"intake batch_size must be at least 1, got {batch_size}")
        audit_sampled("", audit_sample_rate)  # checks the rate now, not at the first batch
        self.reader = reader
        self.store = store
        self.clock = clock
        self.audit_sample_rate = audit_sample_rate
        self.sla = sla
        self.settle = settle
        self.batch_size = batch_size
        self.name = name
        self.consecutive_failures = 0
        """Failed passes of :meth:`run` since the last good one: for health and metrics."""
        self.last_error: str | None = None

    def run_once(self) -> IntakeReport:
        """Read one batch after the cursor, open its cases, save the cursor.

        A StoreError (either database down) propagates; nothing is lost, the next call
        resumes from the saved cursor.
        """
        cursor = self.store.cursor(self.name)
        before = self.clock.now() - self.settle
        logged = self.reader.since(cursor, self.batch_size, before=before)
        if not logged:
            return IntakeReport(0, 0, cursor)
        opened = self._open([entry.record for entry in logged])
        last = logged[-1]
        cursor = IntakeCursor(last.logged_at, last.record.transaction_id)
        self.store.save_cursor(self.name, cursor, self.clock.now())
        return IntakeReport(len(logged), len(opened), cursor)

    def drain(self, max_batches: int = 1000) -> IntakeReport:
        """Run batches until one comes back short (caught up) or ``max_batches`` ran."""
        total = IntakeReport(0, 0, None)
        for _ in range(max_batches):
            report = self.run_once()
            total = total + report
            if report.read < self.batch_size:
                break
        return total

    def backfill(self, start: datetime, end: datetime) -> IntakeReport:
        """Open the cases of every decision made in ``[start, end)``; the cursor is untouched.

        The report's cursor is None: a backfill has no position in the log's write order.
        """
        after: str | None = None
        total = IntakeReport(0, 0, None)
        while True:
            records = self.reader.decided_in(start, end, after, self.batch_size)
            if not records:
                return total
            opened = self._open(records)
            after = records[-1].transaction_id
            total = total + IntakeReport(len(records), len(opened), None)
            if len(records) < self.batch_size:
                return total

    def lag(self) -> timedelta | None:
        """How far behind now the saved cursor is (by the log's write time); None before the
        first batch."""
        cursor = self.store.cursor(self.name)
        return None if cursor is None else self.clock.now() - cursor.logged_at

    def run(
        self, stop: threading.Event, *, interval_s: float = 1.0, max_backoff_s: float = 30.0
    ) -> None:
        """Drain the log every ``interval_s`` until ``stop`` is set; never raises.

        A failure is logged with its reason and retried after a growing pause (up to
        ``max_backoff_s``), so an outage is loud in the logs but does not end the worker.
        """
        pause = interval_s
        while not stop.is_set():
            try:
                report = self.drain()
            except FraudopsError as exc:
                self._failed(str(exc))
                _log.warning(
                    "review.intake_failed", intake=self.name, error=str(exc), retry_in_s=pause
                )
                stop.wait(pause)
                pause = min(pause * 2, max_backoff_s)
                continue
            except Exception as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
                # A bug or a record that cannot be read: keep the worker alive and loud; the
                # cursor has not moved, so nothing is skipped once it is fixed.
                _log.exception("review.intake_crashed", intake=self.name, retry_in_s=pause)
                stop.wait(pause)
                pause = min(pause * 2, max_backoff_s)
                continue
            if report.opened:
                _log.info(
                    "review.cases_opened", intake=self.name, read=report.read, opened=report.opened
                )
            self.consecutive_failures, self.last_error = 0, None
            pause = interval_s
            stop.wait(interval_s)

    def _failed(self, error: str) -> None:
        self.consecutive_failures += 1
        self.last_error = error

    def _open(self, records: Sequence[DecisionRecord]) -> list[str]:
        return open_cases(
            self.store,
            records,
            audit_sample_rate=self.audit_sample_rate,
            sla=self.sla,
            clock=self.clock,
        )
