"""The review desk over SQLite and PostgreSQL: verdicts into labels, refusals, escalation,
roles and the audit entries every action leaves."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from fraudops.clock import ManualClock
from fraudops.errors import (
    AuthError,
    CaseClosedError,
    CaseNotFoundError,
    InputError,
    LockedError,
    PermissionDeniedError,
    SignInLimitedError,
)
from fraudops.review.audit import AuditAction
from fraudops.review.cases import CaseKind, CaseOpening, CaseStatus, Verdict
from fraudops.review.desk import ReviewDesk, VerdictResult
from fraudops.review.users import User
from fraudops.types import Label, LabelSource
from tests.unit.review.conftest import T0
from tests.unit.review.records import make_record


def person(desk: ReviewDesk, username: str) -> User:
    """The signed-in user ``username``."""
    return desk.current_user(username)


def open_case(desk: ReviewDesk, number: int = 1, **fields: object) -> str:
    """Open the review case of ``make_record(number)``; its transaction id."""
    record = make_record(number, **fields)  # type: ignore[arg-type]
    desk.cases.open_cases(
        [CaseOpening(record, CaseKind.REVIEW, record.decided_at + timedelta(hours=4))], T0
    )
    return record.transaction_id


def test_a_fraud_verdict_closes_the_case_and_makes_an_analyst_label(
    desk: ReviewDesk, clock: ManualClock
) -> None:
    """Confirming fraud closes the case and answers Label(source analyst, known_at now)."""
    tid = open_case(desk)
    clock.advance(timedelta(minutes=7))
    result = desk.submit_verdict(person(desk, "ann"), tid, Verdict.FRAUD, "card testing")
    assert Label(tid, True, LabelSource.ANALYST, clock.now()) == result.label
    assert (CaseStatus.CLOSED, Verdict.FRAUD, "ann", "card testing", True) == (
        result.case.status,
        result.case.verdict,
        result.case.verdict_by,
        result.case.verdict_note,
        result.first,
    )
    assert result.label == desk.cases.get(tid).label


def test_every_verdict_leaves_one_audit_entry_saying_who_what_and_why(
    desk: ReviewDesk, clock: ManualClock
) -> None:
    """The verdict's audit entry names the analyst, the case, the note and the verdict."""
    tid = open_case(desk)
    desk.submit_verdict(person(desk, "ann"), tid, Verdict.LEGITIMATE, "customer confirmed")
    [entry] = desk.audit.entries(action=AuditAction.VERDICT)
    assert ("ann", tid, "customer confirmed", clock.now()) == (
        entry.actor,
        entry.subject,
        entry.reason,
        entry.at,
    )
    assert ("legitimate", "open", "lgbm-test") == (
        entry.details["verdict"],
        entry.details["previous_status"],
        entry.details["model_version"],
    )


def test_the_same_verdict_twice_records_once_and_answers_the_same_label(
    desk: ReviewDesk, clock: ManualClock
) -> None:
    """A double submission records nothing more and answers the case as the first left it
    with the very same label (known at the first), so sending it again changes nothing."""
    tid = open_case(desk)
    ann = person(desk, "ann")
    first = desk.submit_verdict(ann, tid, Verdict.FRAUD, "stolen card")
    clock.advance(timedelta(seconds=2))
    again = desk.submit_verdict(ann, tid, Verdict.FRAUD, "stolen card")
    assert VerdictResult(first.case, False, first.labels) == again
    assert 1 == len(desk.audit.entries(action=AuditAction.VERDICT))


def test_simultaneous_double_submissions_record_one_verdict(desk: ReviewDesk) -> None:
    """Of several identical verdicts sent at once, exactly one records; all answer the
    same label."""
    tid = open_case(desk)
    ann = person(desk, "ann")
    results: list[VerdictResult] = []
    start = threading.Barrier(4)

    def submit() -> None:
        start.wait()
        results.append(desk.submit_verdict(ann, tid, Verdict.FRAUD, ""))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (1, 1) == (
        sum(result.first for result in results),
        len({result.labels for result in results}),
    )


def test_disowned_payments_go_with_the_verdict_in_one_go(
    desk: ReviewDesk, clock: ManualClock
) -> None:
    """tx-000002 has an open case, tx-000003 none: disowned with ann's verdict on
    tx-000001, both become fraud labels known at the verdict, tx-000002's case is closed
    as fraud by ann, and the verdict's audit entry lists them, so a repeat and
    ``verdict_labels`` answer all three labels again."""
    tid = open_case(desk, 1)
    open_case(desk, 2)
    ann = person(desk, "ann")
    clock.advance(timedelta(minutes=3))
    result = desk.submit_verdict(ann, tid, Verdict.LEGITIMATE, disowned=["tx-000002", "tx-000003"])
    again = desk.submit_verdict(ann, tid, Verdict.LEGITIMATE)
    expected = (
        Label(tid, False, LabelSource.ANALYST, clock.now()),
        Label("tx-000002", True, LabelSource.ANALYST, clock.now()),
        Label("tx-000003", True, LabelSource.ANALYST, clock.now()),
    )
    assert (expected, ("tx-000002",)) == (result.labels, result.closed_cases)
    assert (expected, expected) == (again.labels, desk.verdict_labels(ann, tid))
    assert (CaseStatus.CLOSED, "ann") == (
        desk.cases.get("tx-000002").status,
        desk.cases.get("tx-000002").verdict_by,
    )


@pytest.mark.parametrize(
    ("disowned", "refusal"),
    [
        (["tx-000002", "tx-000002"], "disowned once"),
        (["tx-000001"], "own payment"),
        ([f"tx-{n:06d}" for n in range(2, 23)], "at most 20"),
    ],
)
def test_a_disowned_list_that_cannot_be_is_refused_before_anything_is_recorded(
    desk: ReviewDesk, disowned: list[str], refusal: str
) -> None:
    """A repeated payment, the case's own, or too many: InputError, and the case stays
    open with no verdict in the audit trail."""
    tid = open_case(desk, 1)
    with pytest.raises(InputError, match=refusal):
        desk.submit_verdict(person(desk, "ann"), tid, Verdict.FRAUD, disowned=disowned)
    assert (CaseStatus.OPEN, []) == (
        desk.cases.get(tid).status,
        desk.audit.entries(action=AuditAction.VERDICT),
    )


def test_disowning_a_payment_escalated_to_a_lead_is_for_leads(desk: ReviewDesk) -> None:
    """bob escalated tx-000002. ann's verdict disowning it is refused (403) and rolled back
    whole: tx-000001 stays open, tx-000002 escalated, no verdict audited. lea's closes both."""
    tid = open_case(desk, 1)
    open_case(desk, 2)
    desk.submit_verdict(person(desk, "bob"), "tx-000002", Verdict.ESCALATE, "a ring?")
    with pytest.raises(PermissionDeniedError, match="tx-000002 is escalated to a lead"):
        desk.submit_verdict(person(desk, "ann"), tid, Verdict.FRAUD, disowned=["tx-000002"])
    refused = (
        desk.cases.get(tid).status,
        desk.cases.get("tx-000002").status,
        desk.audit.entries(action=AuditAction.VERDICT),
    )
    done = desk.submit_verdict(person(desk, "lea"), tid, Verdict.FRAUD, disowned=["tx-000002"])
    assert (CaseStatus.OPEN, CaseStatus.ESCALATED, []) == refused
    assert (("tx-000002",), CaseStatus.CLOSED) == (
        done.closed_cases,
        desk.cases.get("tx-000002").status,
    )


def test_another_verdict_on_a_closed_case_is_refused_with_the_standing_one(
    desk: ReviewDesk,
) -> None:
    """After fraud was confirmed, legitimate is refused (409), naming the verdict and who."""
    tid = open_case(desk)
    desk.submit_verdict(person(desk, "ann"), tid, Verdict.FRAUD, "")
    with pytest.raises(CaseClosedError, match="fraud by 'ann'") as raised:
        desk.submit_verdict(person(desk, "bob"), tid, Verdict.LEGITIMATE, "")
    assert 409 == raised.value.http_status
    assert Verdict.FRAUD == desk.cases.get(tid).verdict


def test_a_verdict_on_a_missing_case_is_refused(desk: ReviewDesk) -> None:
    """A verdict on a transaction without a case raises CaseNotFoundError."""
    with pytest.raises(CaseNotFoundError, match="tx-nope"):
        desk.submit_verdict(person(desk, "ann"), "tx-nope", Verdict.FRAUD, "")


def test_an_analyst_cannot_act_on_a_case_another_has_locked(desk: ReviewDesk) -> None:
    """While ann holds the case, bob's lock and verdict are refused naming ann."""
    tid = open_case(desk)
    desk.lock(person(desk, "ann"), tid)
    bob = person(desk, "bob")
    with pytest.raises(LockedError, match="locked by 'ann'"):
        desk.lock(bob, tid)
    with pytest.raises(LockedError, match="locked by 'ann'"):
        desk.submit_verdict(bob, tid, Verdict.LEGITIMATE, "")
    assert desk.submit_verdict(person(desk, "ann"), tid, Verdict.FRAUD, "").first


def test_escalation_needs_a_note_and_passes_the_case_to_a_lead(desk: ReviewDesk) -> None:
    """An escalation without a note is refused; with one, only a lead can close the case."""
    tid = open_case(desk)
    ann = person(desk, "ann")
    with pytest.raises(InputError, match="note"):
        desk.submit_verdict(ann, tid, Verdict.ESCALATE, "  ")
    escalated = desk.submit_verdict(ann, tid, Verdict.ESCALATE, "merchant looks odd")
    assert (CaseStatus.ESCALATED, None) == (escalated.case.status, escalated.label)
    with pytest.raises(PermissionDeniedError, match="only a lead"):
        desk.submit_verdict(person(desk, "bob"), tid, Verdict.FRAUD, "")
    closed = desk.submit_verdict(person(desk, "lea"), tid, Verdict.FRAUD, "agreed")
    assert (CaseStatus.CLOSED, "ann", True) == (
        closed.case.status,
        closed.case.escalated_by,
        closed.label is not None and closed.label.is_fraud,
    )
    entries = desk.audit.entries(subject=tid)
    assert [(AuditAction.ESCALATION, "ann"), (AuditAction.VERDICT, "lea")] == [
        (entry.action, entry.actor) for entry in entries
    ]
    assert "escalated" == entries[1].details["previous_status"]


def test_escalated_cases_are_a_leads_queue(desk: ReviewDesk) -> None:
    """Escalated cases leave the analysts' queue; leads see them, analysts may not."""
    tid = open_case(desk)
    desk.submit_verdict(person(desk, "ann"), tid, Verdict.ESCALATE, "look")
    assert [] == desk.queue(person(desk, "ann"))
    with pytest.raises(PermissionDeniedError):
        desk.queue(person(desk, "ann"), escalated=True)
    [group] = desk.queue(person(desk, "lea"), escalated=True)
    assert tid == group.cases[0].transaction_id


def test_next_case_locks_the_top_case_for_the_analyst(desk: ReviewDesk) -> None:
    """next_case gives ann the costliest case, locked to her; bob gets the next one."""
    open_case(desk, 1, score=0.2)
    top = open_case(desk, 2, score=0.9, card="card-2")
    ann_case = desk.next_case(person(desk, "ann"))
    bob_case = desk.next_case(person(desk, "bob"))
    assert (top, "ann", "tx-000001") == (
        ann_case.transaction_id if ann_case else None,
        ann_case.locked_by if ann_case else None,
        bob_case.transaction_id if bob_case else None,
    )


def test_an_analyst_cannot_approve_a_model_promotion(desk: ReviewDesk) -> None:
    """Recording a promotion needs a lead: the analyst is refused (403) and nothing recorded."""
    with pytest.raises(PermissionDeniedError, match="approve_promotion") as raised:
        desk.record(person(desk, "ann"), AuditAction.PROMOTION, "model v7", "better AP")
    assert 403 == raised.value.http_status
    entry = desk.record(person(desk, "lea"), AuditAction.PROMOTION, "model v7", "better AP")
    assert [entry] == desk.audit.entries(action=AuditAction.PROMOTION)


def test_verdicts_cannot_be_recorded_without_the_case_changing(desk: ReviewDesk) -> None:
    """record() refuses verdicts, escalations and user changes: those come with their change."""
    with pytest.raises(InputError, match="recorded by the desk itself"):
        desk.record(person(desk, "ada"), AuditAction.VERDICT, "tx-000001", "")


def test_automated_changes_are_recorded_as_the_system(desk: ReviewDesk) -> None:
    """A threshold the system set is recorded with actor system:<component>."""
    entry = desk.record_automated(
        "capacity", AuditAction.THRESHOLD_CHANGE, "policy", "fits 100 a day", {"review": 0.31}
    )
    assert ("system:capacity", True, {"review": 0.31}) == (
        entry.actor,
        entry.automated,
        entry.details,
    )


def test_a_disabled_user_is_signed_out_at_once(desk: ReviewDesk) -> None:
    """After an admin disables ann, her session's next request is a 401."""
    ann = person(desk, "ann")
    desk.set_active(person(desk, "ada"), "ann", False)
    with pytest.raises(AuthError):
        desk.current_user("ann")
    with pytest.raises(AuthError):
        desk.queue(desk.users.get("ann") or ann)


def test_the_audit_trail_is_for_leads_and_admins(desk: ReviewDesk) -> None:
    """An analyst may not read or export the audit trail; a lead may."""
    for call in (
        lambda: desk.audit_entries(person(desk, "ann")),
        lambda: desk.export_audit(person(desk, "ann"), "csv"),
    ):
        with pytest.raises(PermissionDeniedError):
            call()
    assert [] != desk.audit_entries(person(desk, "lea"))  # the users' creation


def test_inflow_over_capacity_is_shown(desk: ReviewDesk, clock: ManualClock) -> None:
    """Four review cases today against a capacity of three is exceeded."""
    for n in range(4):
        open_case(desk, n)
    clock.advance(timedelta(hours=1))
    status = desk.capacity(person(desk, "ann"))
    assert (4, 3, True, 0) == (
        status.inflow_today,
        status.daily_capacity,
        status.exceeded,
        status.remaining_today,
    )


def test_sign_in_is_refused_for_a_wrong_password_then_rate_limited(desk: ReviewDesk) -> None:
    """Wrong passwords give 401 until the limit, then 429 even for the right one."""
    for _ in range(3):
        with pytest.raises(AuthError, match="wrong username or password"):
            desk.sign_in("ann", "not her password", "10.0.0.1")
    with pytest.raises(SignInLimitedError, match="too many sign-in attempts") as raised:
        desk.sign_in("ann", "correct horse battery", "10.0.0.2")
    assert 429 == raised.value.http_status


def test_a_good_sign_in_gives_the_user(desk: ReviewDesk) -> None:
    """The right password signs the user in with their role."""
    assert ("lea", "lead") == (
        desk.sign_in("lea", "correct horse battery", "10.0.0.1").username,
        desk.sign_in("lea", "correct horse battery", "10.0.0.1").role.value,
    )
