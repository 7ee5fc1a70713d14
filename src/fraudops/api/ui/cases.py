"""The case page: one transaction with everything its decision was made from, and the verdict.

Opening the page locks the case to the analyst (renewed by htmx every third of the lock
time while the page is open); a case someone else holds is shown read-only with who holds
it, and its actions are refused (409); an escalated case is read-only for an analyst
(403), as it waits for a lead.

A fraud or legitimate verdict makes a label, and one more for each payment of the card's
history the analyst ticks as disowned by the cardholder; the whole submission is checked
before anything is recorded (see ``ReviewDesk.submit_verdict``). The labels then go to
the label sink (the online state and the training store). If that fails, the verdict
stands and the queue says which labels were not applied; sending the same verdict again,
or "Send its labels again" on the closed case's page, sends every label of the verdict
again (applying one twice changes nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui import charts
from fraudops.api.ui.access import signed_in
from fraudops.api.ui.labels import names, report, send_labels
from fraudops.api.ui.pages import UiRoute, log, redirect, render
from fraudops.api.ui.parts import ReviewUi, ui_of
from fraudops.errors import (
    CaseClosedError,
    FraudopsError,
    InputError,
    LockedError,
    PermissionDeniedError,
)
from fraudops.review import Case, CaseStatus, Permission, User, Verdict, VerdictResult, allowed
from fraudops.review.desk import MAX_NOTE_LENGTH

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])

HISTORY_ROWS = 10
MIN_LOCK_RENEW_SECONDS = 5
_REFUSALS = (LockedError, CaseClosedError, PermissionDeniedError, InputError)
_STEPS = {
    "features": "the feature store failed",
    "replica": "another replica was still deciding this payment",
    "service": "the decision service failed",
    "rules": "the rules failed",
    "static": "the static policy failed",
}
_SHED = (
    "the service was at its limit of work in flight and shed the request, so the rules or"
    " the static policy answered without features"
)


def lock_renew_seconds(lock_ttl: timedelta) -> int:
    """How often an open case page renews its lock: a third of the lock time, so two
    renewals can fail (a network blip) before the lock lapses."""
    return max(MIN_LOCK_RENEW_SECONDS, int(lock_ttl.total_seconds() // 3))


def degraded_story(reason: str | None) -> str:
    """What a decision's ``degraded_reason`` (``step:reason`` pairs, comma-separated) says,
    in words: ``admission:shed`` is a shed request, ``champion:timeout`` a model that did
    not answer in time."""
    if not reason:
        return "no reason was recorded"
    told = []
    for attempt in reason.split(","):
        step, _, why = attempt.partition(":")
        if (step, why) == ("admission", "shed"):
            told.append(_SHED)
        elif step in _STEPS:
            told.append(f"{_STEPS[step]} ({why})")
        else:
            told.append(f"model {step} failed ({why})")
    return "; ".join(told)


def may_act(user: User, case: Case, now: datetime) -> bool:
    """Whether ``user`` can give this case a verdict now: waiting, theirs to work, and not
    escalated unless they resolve escalations."""
    if case.status is CaseStatus.CLOSED:
        return False
    if case.status is CaseStatus.ESCALATED and not allowed(user, Permission.RESOLVE_ESCALATIONS):
        return False
    return case.lock_holder(now) in (None, user.username)


def _load(
    ui: ReviewUi, user: User, transaction_id: str, take_lock: bool
) -> tuple[Case, FraudopsError | None]:
    desk = ui.desk
    case = desk.case(user, transaction_id)
    if not take_lock or case.status is CaseStatus.CLOSED:
        return case, None
    try:
        return desk.lock(user, transaction_id), None
    except (LockedError, CaseClosedError, PermissionDeniedError) as exc:
        return desk.case(user, transaction_id), exc


def _history(ui: ReviewUi, case: Case) -> dict[str, Any]:
    if ui.history is None:
        return {"history_error": "the decision log is not connected to the review UI"}
    try:
        card = ui.history.card_history(case.card_id, case.decided_at, HISTORY_ROWS)
        terminal = ui.history.terminal_history(case.terminal_id, case.decided_at, HISTORY_ROWS)
    except FraudopsError as exc:
        log.error("review_ui.history_failed", transaction_id=case.transaction_id, error=str(exc))
        return {"history_error": str(exc)}
    return {"card_history": card, "terminal_history": terminal, "history_error": None}


async def _case_page(
    request: Request,
    user: User,
    transaction_id: str,
    *,
    take_lock: bool,
    error: FraudopsError | None = None,
    note: str = "",
) -> Response:
    ui = ui_of(request)
    case, refusal = await run_in_threadpool(_load, ui, user, transaction_id, take_lock)
    problem = error or refusal
    problem_text: str | None = None
    if isinstance(problem, LockedError):
        problem_text = (
            f"{problem.holder} is working on this case (locked until"
            f" {problem.until:%H:%M UTC}): it is read-only for you, and a verdict is refused."
        )
    elif isinstance(problem, PermissionDeniedError) and _waits_for_a_lead(user, case):
        problem_text = (
            f"This case is escalated to a lead by {case.escalated_by} and waits for a"
            " lead's verdict: it is read-only for you."
        )
    elif problem is not None:
        problem_text = str(problem)
    context: dict[str, Any] = await run_in_threadpool(_history, ui, case)
    now = ui.desk.clock.now()
    reasons = [(reason.code, reason.contribution) for reason in case.record.decision.reasons]
    context.update(
        {
            "case": case,
            "record": case.record,
            "decision": case.record.decision,
            "tx": case.record.transaction,
            "holder": case.lock_holder(now),
            "may_act": may_act(user, case, now),
            "problem": problem_text,
            "note": note,
            "reason_chart": charts.reason_bars(reasons),
            "may_escalate": case.status is CaseStatus.OPEN,
            "degraded_story": degraded_story(case.record.decision.degraded_reason),
            "lock_renew_seconds": lock_renew_seconds(ui.desk.lock_ttl),
            "max_note": MAX_NOTE_LENGTH,
        }
    )
    status = problem.http_status if problem is not None else 200
    return render(request, "case.html", context, status_code=status)


def _waits_for_a_lead(user: User, case: Case) -> bool:
    return case.status is CaseStatus.ESCALATED and not allowed(user, Permission.RESOLVE_ESCALATIONS)


@router.get("/cases/{transaction_id}", name="ui.case")
async def case_page(
    request: Request, transaction_id: str, user: Annotated[User, Depends(signed_in)]
) -> Response:
    """The case, locked to the viewer if it is free (409 and read-only if someone holds it)."""
    return await _case_page(request, user, transaction_id, take_lock=True)


@router.post("/cases/{transaction_id}/verdict", name="ui.verdict")
async def verdict(
    request: Request,
    transaction_id: str,
    user: Annotated[User, Depends(signed_in)],
    verdict: Annotated[Verdict, Form()],
    note: Annotated[str, Form(max_length=4 * MAX_NOTE_LENGTH)] = "",
    disowned: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Confirm fraud, mark legitimate, or escalate with a note; back to the queue.

    ``disowned``: payments in the card's history that the cardholder, reached while the
    case was worked, says were not theirs; each becomes a fraud label too. Everything is
    checked before anything is recorded.
    """
    ui = ui_of(request)
    ticked = tuple(disowned or ())
    try:
        if ticked:
            await run_in_threadpool(_check_disowned, ui, user, transaction_id, ticked)
        result = await run_in_threadpool(
            ui.desk.submit_verdict, user, transaction_id, verdict, note, ticked
        )
    except _REFUSALS as exc:
        return await _case_page(
            request, user, transaction_id, take_lock=False, error=exc, note=note
        )
    if verdict is Verdict.ESCALATE:
        return redirect(request, "ui.queue", flash=_escalation_said(result, note))
    sent = await send_labels(ui.apply_label, result.labels)
    told, kind = report(sent)
    message = f"{_verdict_said(result, ticked)} {told}".strip()
    return redirect(request, "ui.queue", flash=message, flash_kind=kind)


@router.post("/cases/{transaction_id}/labels", name="ui.send_labels")
async def send_labels_again(
    request: Request, transaction_id: str, user: Annotated[User, Depends(signed_in)]
) -> Response:
    """Send the labels of the case's verdict again (say, one that could not be applied);
    a label the stores hold already changes nothing."""
    ui = ui_of(request)
    labels = await run_in_threadpool(ui.desk.verdict_labels, user, transaction_id)
    if not labels:
        raise InputError(f"case {transaction_id} has no fraud or legitimate verdict to send")
    told, kind = report(await send_labels(ui.apply_label, labels))
    message = f"{transaction_id}: its labels were sent again. {told}"
    return redirect(
        request, "ui.case", flash=message, flash_kind=kind, transaction_id=transaction_id
    )


def _verdict_said(result: VerdictResult, ticked: tuple[str, ...]) -> str:
    """What a fraud or legitimate verdict did, or that it was a repeat, in one sentence."""
    case = result.case
    if not result.first:
        said = f"{case.transaction_id}: that verdict was already recorded"
        if set(ticked) != set(result.disowned):
            standing = f"{names(result.disowned)} disowned" if result.disowned else "none disowned"
            said += f" ({standing}), so the payments ticked this time were not recorded"
        return said + "; its labels were sent again."
    said = "confirmed fraud" if case.verdict is Verdict.FRAUD else "marked legitimate"
    count = len(result.disowned)
    if count:
        payments = "payment" if count == 1 else "payments"
        said += f", and {count} earlier {payments} on the card disowned as fraud"
        if result.closed_cases:
            cases = "case" if len(result.closed_cases) == 1 else "cases"
            said += f" (the open {cases} of {names(result.closed_cases)} closed)"
    return f"{case.transaction_id} {said}."


def _escalation_said(result: VerdictResult, note: str) -> str:
    case = result.case
    if result.first:
        return f"{case.transaction_id} escalated to a lead."
    kept = (case.escalation_note or "") == note.strip()
    return f"{case.transaction_id} was already escalated to a lead by {case.escalated_by}; " + (
        "nothing changed." if kept else "your note was not saved."
    )


def _check_disowned(
    ui: ReviewUi, user: User, transaction_id: str, disowned: tuple[str, ...]
) -> None:
    """InputError unless ``disowned`` names only payments of the card history the case
    page shows (the desk checks the rest)."""
    history = _history(ui, ui.desk.case(user, transaction_id))
    if history.get("history_error"):
        raise InputError(f"the card's history cannot be read: {history['history_error']}")
    shown = {record.transaction_id for record in history["card_history"]}
    unknown = sorted(set(disowned) - shown)
    if unknown:
        raise InputError(
            f"only payments in this card's recent history can be disowned, not {unknown}"
        )


@router.post("/cases/{transaction_id}/lock", name="ui.lock")
async def renew_lock(
    request: Request, transaction_id: str, user: Annotated[User, Depends(signed_in)]
) -> Response:
    """Renew the viewer's lock (htmx calls this while the case page is open)."""
    ui = ui_of(request)
    case = await run_in_threadpool(ui.desk.lock, user, transaction_id)
    return render(request, "_lock.html", {"case": case})


@router.post("/cases/{transaction_id}/unlock", name="ui.unlock")
async def release_lock(
    request: Request, transaction_id: str, user: Annotated[User, Depends(signed_in)]
) -> Response:
    """Give the case back to the queue without a verdict."""
    ui = ui_of(request)
    await run_in_threadpool(ui.desk.unlock, user, transaction_id)
    return redirect(request, "ui.queue", flash=f"{transaction_id} is back in the queue.")
