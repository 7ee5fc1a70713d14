"""The case page: one transaction with everything its decision was made from, and the verdict.

Opening the page locks the case to the analyst (renewed by htmx while the page is open);
a case someone else holds is shown read-only with who holds it, and its actions are
refused (409). A fraud or legitimate verdict makes a label, which goes straight to the
label sink (the online state's terminal risk and the training store); if that fails the
verdict still stands (the case store keeps it) and the page says the label is pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui import charts
from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, log, redirect, render
from fraudops.api.ui.parts import ReviewUi, ui_of
from fraudops.errors import (
    CaseClosedError,
    FraudopsError,
    InputError,
    LockedError,
    PermissionDeniedError,
)
from fraudops.review import Case, CaseStatus, Permission, User, Verdict, allowed
from fraudops.review.desk import MAX_NOTE_LENGTH

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])

HISTORY_ROWS = 10
LOCK_RENEW_SECONDS = 300
SHORTCUTS = (("f", Verdict.FRAUD, "Confirm fraud"), ("l", Verdict.LEGITIMATE, "Legitimate"))
_REFUSALS = (LockedError, CaseClosedError, PermissionDeniedError, InputError)


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
            "shortcuts": SHORTCUTS,
            "lock_renew_seconds": LOCK_RENEW_SECONDS,
            "max_note": MAX_NOTE_LENGTH,
        }
    )
    status = problem.http_status if problem is not None else 200
    return render(request, "case.html", context, status_code=status)


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
    case was worked, says were not theirs; each becomes a fraud label too.
    """
    ui = ui_of(request)
    try:
        if disowned:
            await run_in_threadpool(_check_disowned, ui, user, transaction_id, verdict, disowned)
        result = await run_in_threadpool(
            ui.desk.submit_verdict, user, transaction_id, verdict, note
        )
        labels = [] if result.label is None else [result.label]
        closed: list[str] = []
        if disowned and result.first and result.label is not None:
            done = await run_in_threadpool(ui.desk.disown, user, transaction_id, disowned)
            labels += done.labels
            closed = done.closed_cases
    except _REFUSALS as exc:
        return await _case_page(
            request, user, transaction_id, take_lock=False, error=exc, note=note
        )
    if not result.first:
        message = f"{transaction_id}: that verdict was already recorded; nothing changed."
        return redirect(request, "ui.queue", flash=message)
    if result.label is None:
        return redirect(request, "ui.queue", flash=f"{transaction_id} escalated to a lead.")
    said = "confirmed fraud" if verdict is Verdict.FRAUD else "marked legitimate"
    if len(labels) > 1:
        said += f", and {len(labels) - 1} earlier payment(s) on the card disowned as fraud"
        if closed:
            said += f" (their open cases {', '.join(closed)} closed)"
    accounts = []
    try:
        for label in labels:
            accounts.append(await ui.apply_label(label))
    except FraudopsError as exc:
        log.error("review_ui.label_not_applied", transaction_id=transaction_id, error=str(exc))
        missed = (
            "its label was" if len(labels) == 1 else f"{len(labels) - len(accounts)} labels were"
        )
        message = f"{transaction_id} {said}. The verdict is saved, but {missed} not applied: {exc}"
        return redirect(request, "ui.queue", flash=message, flash_kind="warning")
    return redirect(request, "ui.queue", flash=f"{transaction_id} {said}. {accounts[0]}")


def _check_disowned(
    ui: ReviewUi, user: User, transaction_id: str, verdict: Verdict, disowned: list[str]
) -> None:
    """InputError unless ``disowned`` comes with a fraud or legitimate verdict and names
    only payments of the card history the case page shows."""
    if verdict is Verdict.ESCALATE:
        raise InputError("disown the card's payments with a verdict, not an escalation")
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
