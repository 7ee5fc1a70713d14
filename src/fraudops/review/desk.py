"""The review desk: what the API and the UI call, with every permission checked here.

Each method takes the signed-in :class:`~fraudops.review.users.User` first, checks it
against the permission table, and then asks the stores, so a route is: read the session,
call the desk, render the answer. Errors are the tree's (each with its HTTP status):
AuthError 401, PermissionDeniedError 403, CaseNotFoundError 404, CaseClosedError and
LockedError 409, InputError 422, SignInLimitedError 429, StoreError 503.

A verdict answers with the :class:`~fraudops.types.Label` objects it made; the caller
applies them to the online state and stores them for training (``DecisionService.learn``).
A repeat of a verdict records nothing and answers the same labels again, each known when
the verdict was first given: both stores keep a label once (the training store by
transaction, source and time; the online state answers ``unchanged``), so a double
submission teaches the model once, and a label that could not be applied the first time
is applied by the repeat (or by :meth:`ReviewDesk.verdict_labels`).

Payments the cardholder disowns go with the verdict, checked whole before anything is
recorded and recorded in the verdict's transaction: see :meth:`ReviewDesk.submit_verdict`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from argon2 import PasswordHasher

from fraudops.clock import Clock
from fraudops.errors import AuthError, InputError
from fraudops.review.audit import (
    SYSTEM_PREFIX,
    AuditAction,
    AuditEntry,
    AuditTrail,
    SqlAuditTrail,
)
from fraudops.review.capacity import CapacityStatus, capacity_status
from fraudops.review.cases import (
    Case,
    CaseGroup,
    CaseKind,
    CaseStatus,
    CaseStore,
    QueueStats,
    Verdict,
    verdict_label,
)
from fraudops.review.database import ReviewDatabase
from fraudops.review.permissions import Permission, allowed, authorise
from fraudops.review.ratelimit import SignInLimiter, SqlSignInLimiter
from fraudops.review.store import SqlCaseStore
from fraudops.review.users import Role, SqlUserStore, User, UserStore
from fraudops.types import Label

_log = structlog.get_logger("fraudops.review")

MAX_NOTE_LENGTH = 2000
MAX_DISOWNED = 20
"""Payments a cardholder can disown at once: the card history a case page shows."""
_ALL_KINDS = (CaseKind.REVIEW, CaseKind.AUDIT_SAMPLE)


@dataclass(frozen=True, slots=True)
class VerdictResult:
    """What a verdict did; ``first`` is False for a repeat, which changed nothing.

    ``labels`` are the labels of the verdict that stands, to apply and store: the case's
    own, then a fraud label per payment disowned with it, all known when it was given.
    None for an escalation. A repeat answers them again (applying one twice changes
    nothing). ``disowned`` are the payments disowned with the standing verdict, and
    ``closed_cases`` those of them whose own cases this submission closed.
    """

    case: Case
    first: bool
    labels: tuple[Label, ...] = ()
    disowned: tuple[str, ...] = ()
    closed_cases: tuple[str, ...] = ()

    @property
    def label(self) -> Label | None:
        """The case's own label; None for an escalation."""
        return self.labels[0] if self.labels else None


class ReviewDesk:
    """Cases, verdicts, users and the audit trail behind one permission check."""

    def __init__(
        self,
        cases: CaseStore,
        users: UserStore,
        audit: AuditTrail,
        clock: Clock,
        limiter: SignInLimiter,
        *,
        lock_ttl: timedelta = timedelta(minutes=15),
        daily_capacity: int = 100,
    ) -> None:
        self.cases = cases
        self.users = users
        self.audit = audit
        self.clock = clock
        self.limiter = limiter
        self.lock_ttl = lock_ttl
        self.daily_capacity = daily_capacity

    # ------------------------------------------------------------------ sign-in

    def sign_in(self, username: str, password: str, client: str) -> User:
        """The user whose password this is; AuthError (401) if none, SignInLimitedError
        (429) after too many failures for the username or from ``client`` (an address)."""
        self.limiter.check(username, client)
        user = self.users.verify(username, password, self.clock.now())
        if user is None:
            self.limiter.failed(username, client)
            _log.warning("review.sign_in_failed", username=username, client=client)
            raise AuthError("wrong username or password")
        self.limiter.succeeded(username, client)
        _log.info("review.signed_in", username=username, client=client)
        return user

    def current_user(self, username: str) -> User:
        """The user a session names, read afresh (so a disabled account stops at once);
        AuthError if there is no such active user."""
        user = self.users.get(username)
        if user is None or not user.active:
            raise AuthError("the session's user does not exist or is disabled")
        return user

    # ------------------------------------------------------------------ queue

    def queue(
        self,
        user: User,
        *,
        escalated: bool = False,
        kinds: Sequence[CaseKind] = _ALL_KINDS,
        limit_groups: int = 50,
        offset_groups: int = 0,
    ) -> list[CaseGroup]:
        """The open cases grouped by card, costliest group first, a page of whole groups;
        ``escalated`` shows the escalated ones instead (leads)."""
        authorise(user, Permission.RESOLVE_ESCALATIONS if escalated else Permission.WORK_CASES)
        status = CaseStatus.ESCALATED if escalated else CaseStatus.OPEN
        return self.cases.queue(
            statuses=[status],
            kinds=kinds,
            limit_groups=limit_groups,
            offset_groups=offset_groups,
        )

    def stats(self, user: User) -> QueueStats:
        """Queue depth, overdue cases, the oldest waiting decision, today's inflow."""
        authorise(user, Permission.WORK_CASES)
        return self.cases.stats(self.clock.now())

    def capacity(self, user: User) -> CapacityStatus:
        """Today's review inflow against the team's daily capacity."""
        authorise(user, Permission.WORK_CASES)
        return capacity_status(self.cases, self.clock.now(), self.daily_capacity)

    def case(self, user: User, transaction_id: str) -> Case:
        """One case with its decision record; CaseNotFoundError if there is none."""
        authorise(user, Permission.WORK_CASES)
        return self.cases.get(transaction_id)

    # ------------------------------------------------------------------ locks

    def lock(self, user: User, transaction_id: str) -> Case:
        """Lock the case to ``user`` for the lock time (renews their own lock)."""
        authorise(user, Permission.WORK_CASES)
        case = self.cases.get(transaction_id)
        if case.status is CaseStatus.ESCALATED:
            authorise(user, Permission.RESOLVE_ESCALATIONS)
        return self.cases.lock(transaction_id, user.username, self.clock.now(), self.lock_ttl)

    def unlock(self, user: User, transaction_id: str) -> None:
        """Release ``user``'s lock on the case."""
        authorise(user, Permission.WORK_CASES)
        self.cases.unlock(transaction_id, user.username)

    def next_case(self, user: User, *, escalated: bool = False) -> Case | None:
        """Lock and return the first case in queue order nobody else holds."""
        authorise(user, Permission.RESOLVE_ESCALATIONS if escalated else Permission.WORK_CASES)
        status = CaseStatus.ESCALATED if escalated else CaseStatus.OPEN
        return self.cases.claim_next(
            user.username, self.clock.now(), self.lock_ttl, statuses=[status]
        )

    # ------------------------------------------------------------------ verdicts

    def submit_verdict(
        self,
        user: User,
        transaction_id: str,
        verdict: Verdict,
        note: str = "",
        disowned: Sequence[str] = (),
    ) -> VerdictResult:
        """Confirm fraud, mark legitimate, or escalate (a note is then required).

        ``disowned``: earlier payments on the card that the cardholder, reached while
        ``user`` worked this case, says were not theirs (the caller checks that they are in
        the card history the case page showed). Each becomes a fraud label and a fraud
        verdict by ``user`` in the audit trail; a payment with a waiting case of its own has
        that case closed as fraud by ``user``, unless another analyst holds it.

        The whole submission is checked before anything is recorded, and the verdict and
        its disowned payments are recorded in one transaction, so a refusal or a store
        failure records none of it. Refused with InputError (a note too long or missing for
        an escalation; ``disowned`` with an escalation, repeating a payment, naming the
        case's own, or longer than MAX_DISOWNED), CaseNotFoundError, CaseClosedError
        (another verdict stands), LockedError (another analyst holds the case) or
        PermissionDeniedError: the case, or a disowned payment's own case, is escalated
        and ``user`` does not resolve escalations (escalated cases wait for a lead).

        The same verdict again is a repeat: nothing is recorded (not even new ``disowned``
        payments), and the answer carries the standing verdict's labels again.
        """
        authorise(user, Permission.WORK_CASES)
        verdict = Verdict(verdict)
        note = note.strip()
        if len(note) > MAX_NOTE_LENGTH:
            raise InputError(f"a note may have at most {MAX_NOTE_LENGTH} characters")
        if verdict is Verdict.ESCALATE and not note:
            raise InputError("an escalation needs a note saying what the lead should look at")
        ids = _checked_disowned(transaction_id, verdict, disowned)
        result = self.cases.record_verdict(
            transaction_id,
            verdict,
            user.username,
            note,
            self.clock.now(),
            may_resolve_escalated=allowed(user, Permission.RESOLVE_ESCALATIONS),
            disowned=ids,
        )
        case = result.case
        standing = ids if result.first else self._disowned_with(case)
        _log.info(
            "review.verdict",
            transaction_id=transaction_id,
            verdict=verdict.value,
            user=user.username,
            first=result.first,
            disowned=len(standing),
            closed_cases=len(result.closed),
        )
        return VerdictResult(
            case=case,
            first=result.first,
            labels=_labels(case, standing),
            disowned=standing,
            closed_cases=result.closed,
        )

    def verdict_labels(self, user: User, transaction_id: str) -> tuple[Label, ...]:
        """The labels of the verdict that closed the case (its own, then those of the
        payments disowned with it), to apply again; empty while it has none."""
        authorise(user, Permission.WORK_CASES)
        case = self.cases.get(transaction_id)
        return _labels(case, self._disowned_with(case))

    def _disowned_with(self, case: Case) -> tuple[str, ...]:
        """The payments disowned with the case's standing verdict, as its audit entry
        recorded them."""
        if case.verdict is None or case.verdict is Verdict.ESCALATE:
            return ()
        entries = self.audit.entries(subject=case.transaction_id, action=AuditAction.VERDICT)
        for entry in entries:
            if entry.at == case.verdict_at and entry.actor == case.verdict_by:
                return tuple(str(tx) for tx in entry.details.get("disowned", ()))
        return ()

    # ------------------------------------------------------------------ audit

    def authorise(self, user: User, permission: Permission) -> None:
        """Check a permission for an action done elsewhere (promotion, rollback, a rule or
        threshold change); record it with :meth:`record` once it is done."""
        authorise(user, permission)

    def record(
        self,
        user: User,
        action: AuditAction,
        subject: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Record a human action done elsewhere (promotion, rollback, rule or threshold
        change) in the audit trail; the action's permission is checked here too.

        Verdicts, escalations and user changes are recorded by the desk itself, with the
        change they describe, so they cannot be recorded here.
        """
        permission = _RECORDED_ELSEWHERE.get(action)
        if permission is None:
            raise InputError(f"{action.value} is recorded by the desk itself, not by record()")
        authorise(user, permission)
        return self.audit.record(
            AuditEntry(self.clock.now(), user.username, action, subject, reason, details or {})
        )

    def record_automated(
        self,
        component: str,
        action: AuditAction,
        subject: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Record a change the system made on its own (a model or thresholds), as
        ``system:<component>``."""
        if action not in (AuditAction.MODEL_CHANGE, AuditAction.THRESHOLD_CHANGE):
            raise InputError(f"the system does not record {action.value} on its own")
        actor = SYSTEM_PREFIX + component
        return self.audit.record(
            AuditEntry(self.clock.now(), actor, action, subject, reason, details or {})
        )

    def audit_entries(
        self,
        user: User,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        action: AuditAction | None = None,
        subject: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries matching every filter given, oldest first (leads and admins)."""
        authorise(user, Permission.VIEW_AUDIT)
        return self.audit.entries(
            since=since,
            actor=actor,
            action=action,
            subject=subject,
            after_id=after_id,
            limit=limit,
        )

    def export_audit(
        self, user: User, format: Literal["csv", "jsonl"], *, since: datetime | None = None
    ) -> Iterator[str]:
        """The audit trail as CSV or JSON lines, chunk by chunk (leads and admins)."""
        authorise(user, Permission.VIEW_AUDIT)
        return self.audit.export(format, since=since)

    # ------------------------------------------------------------------ users

    def users_list(self, user: User) -> list[User]:
        """Every user (admins)."""
        authorise(user, Permission.MANAGE_USERS)
        return self.users.list()

    def add_user(self, admin: User, username: str, role: Role, password: str) -> User:
        """Create a user (admins); audited."""
        authorise(admin, Permission.MANAGE_USERS)
        return self.users.add(username, role, password, by=admin.username, now=self.clock.now())

    def set_role(self, admin: User, username: str, role: Role) -> User:
        """Change a user's role (admins); audited."""
        authorise(admin, Permission.MANAGE_USERS)
        self._not_self(admin, username, "change their own role")
        return self.users.set_role(username, role, by=admin.username, now=self.clock.now())

    def set_active(self, admin: User, username: str, active: bool) -> User:
        """Enable or disable a user (admins); audited."""
        authorise(admin, Permission.MANAGE_USERS)
        self._not_self(admin, username, "disable themselves")
        return self.users.set_active(username, active, by=admin.username, now=self.clock.now())

    def change_password(self, user: User, username: str, password: str) -> User:
        """Set a password: one's own, or anyone's for an admin; audited."""
        if username != user.username:
            authorise(user, Permission.MANAGE_USERS)
        return self.users.set_password(username, password, by=user.username, now=self.clock.now())

    def close(self) -> None:
        """Release the database connections."""
        self.cases.close()

    @staticmethod
    def _not_self(admin: User, username: str, what: str) -> None:
        # An admin locking themselves out could leave no admin at all.
        if admin.username == username:
            raise InputError(f"an admin cannot {what}; ask another admin")


def _checked_disowned(
    transaction_id: str, verdict: Verdict, disowned: Sequence[str]
) -> tuple[str, ...]:
    """``disowned`` as a tuple; InputError unless it can go with this verdict."""
    ids = tuple(disowned)
    if not ids:
        return ids
    if verdict is Verdict.ESCALATE:
        raise InputError("disown the card's payments with a verdict, not an escalation")
    if len(ids) > MAX_DISOWNED:
        raise InputError(f"at most {MAX_DISOWNED} payments can be disowned at once")
    if len(set(ids)) != len(ids):
        raise InputError("a payment is disowned once: the list repeats one")
    if transaction_id in ids:
        raise InputError("the case's own payment takes the verdict, not a disowning")
    return ids


def _labels(case: Case, disowned: Sequence[str]) -> tuple[Label, ...]:
    """The labels a closing verdict made: the case's own, then a fraud label per payment
    disowned with it, known at the same time; none for a case without one."""
    own = case.label
    if own is None:
        return ()
    return (own, *(verdict_label(tx, Verdict.FRAUD, own.known_at) for tx in disowned))


_RECORDED_ELSEWHERE: Mapping[AuditAction, Permission] = {
    AuditAction.PROMOTION: Permission.APPROVE_PROMOTION,
    AuditAction.ROLLBACK: Permission.ROLLBACK_MODEL,
    AuditAction.RULE_CHANGE: Permission.CHANGE_RULES,
    AuditAction.THRESHOLD_CHANGE: Permission.CHANGE_THRESHOLDS,
    AuditAction.MODEL_CHANGE: Permission.APPROVE_PROMOTION,
}


def open_review_desk(
    url: str,
    clock: Clock,
    *,
    lock_ttl: timedelta = timedelta(minutes=15),
    daily_capacity: int = 100,
    sign_in_max_failures: int = 5,
    sign_in_max_client_failures: int | None = None,
    sign_in_window: timedelta = timedelta(minutes=15),
    hasher: PasswordHasher | None = None,
) -> ReviewDesk:
    """A desk on the review database at ``url`` (migrated on first use), with SQL stores.

    The app builds it once from ``Settings.review`` (``database_url(data_dir)``,
    ``lock_minutes``, ``daily_capacity``, ``sign_in_*``) and closes it at shutdown.
    """
    database = ReviewDatabase(url)
    return ReviewDesk(
        SqlCaseStore(database),
        SqlUserStore(database, hasher),
        SqlAuditTrail(database),
        clock,
        SqlSignInLimiter(
            database,
            clock,
            max_failures=sign_in_max_failures,
            max_client_failures=sign_in_max_client_failures,
            window=sign_in_window,
        ),
        lock_ttl=lock_ttl,
        daily_capacity=daily_capacity,
    )
