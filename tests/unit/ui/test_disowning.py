"""A verdict with payments the cardholder disowned: checked whole before anything is
recorded, recorded in one go, and its labels sent again by a repeat."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from fraudops.errors import StoreError
from fraudops.review import AuditAction, CaseStatus, Verdict
from fraudops.review.audit import AuditEntry, insert_entry
from fraudops.types import Label, LabelSource
from tests.unit.ui.conftest import Desk, build_app, csrf_of, make_record, sign_in


def _verdict(client: TestClient, case: str, token: str, verdict: str, *disowned: str) -> str:
    """Post a verdict on ``case`` with ``disowned`` ticked; the page or flash it led to."""
    response = client.post(
        f"/ui/cases/{case}/verdict",
        data={"csrf": token, "verdict": verdict, "disowned": list(disowned)},
    )
    if response.status_code == 303:
        return client.get(response.headers["location"]).text
    return response.text


def _labelled(parts: Desk) -> list[tuple[str, bool]]:
    return [(label.transaction_id, label.is_fraud) for label in parts.labels]


def test_payments_the_cardholder_disowns_become_fraud_labels_with_the_verdict(
    client: TestClient, parts: Desk
) -> None:
    """Ticked in the card's history, two earlier payments are labelled fraud with the
    case's verdict, audited as the analyst's, and said in the queue's message."""
    parts.decisions.write([make_record(8), make_record(9)])  # earlier, same card
    parts.open(make_record(1))
    sign_in(client, "ann")
    page = client.get("/ui/cases/tx-0001").text
    queue = _verdict(client, "tx-0001", csrf_of(page), "legitimate", "tx-0008", "tx-0009")
    entries = parts.desk.audit.entries(action=AuditAction.VERDICT)
    assert 'name="disowned" value="tx-0009" form="verdict-form"' in page
    assert [("tx-0001", False), ("tx-0008", True), ("tx-0009", True)] == _labelled(parts)
    assert {LabelSource.ANALYST} == {label.source for label in parts.labels}
    assert [("ann", "tx-0008", "tx-0001"), ("ann", "tx-0009", "tx-0001")] == [
        (entry.actor, entry.subject, entry.details["case"])
        for entry in entries
        if entry.subject != "tx-0001"
    ]
    assert "and 2 earlier payments on the card disowned as fraud" in queue


def test_a_list_that_repeats_a_payment_is_refused_before_the_verdict_is_recorded(
    client: TestClient, parts: Desk
) -> None:
    """``disowned=tx-0009&disowned=tx-0009`` is refused with 422 and leaves the case open,
    unaudited and unlabelled; sent again without the repeat, the verdict and both labels
    are recorded."""
    parts.decisions.write([make_record(9)])
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    refused = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "fraud", "disowned": ["tx-0009", "tx-0009"]},
    )
    verdicts = parts.desk.audit.entries(action=AuditAction.VERDICT)
    before = (parts.desk.cases.get("tx-0001").status, verdicts, parts.labels[:])
    _verdict(client, "tx-0001", token, "fraud", "tx-0009")
    assert 422 == refused.status_code
    assert "a payment is disowned once" in refused.text
    assert (CaseStatus.OPEN, [], []) == before
    assert CaseStatus.CLOSED == parts.desk.cases.get("tx-0001").status
    assert [("tx-0001", True), ("tx-0009", True)] == _labelled(parts)


def test_a_store_failure_while_disowning_records_nothing(
    client: TestClient, parts: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the review database fails while the disowned payment's case is closed, the
    answer is 503 and the verdict is not recorded either: the case stays open for a retry."""
    parts.open(make_record(1), make_record(9))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)

    def failing(connection: Connection, entry: AuditEntry) -> AuditEntry:
        if entry.subject == "tx-0009":
            raise StoreError("review store unavailable: disk full")
        return insert_entry(connection, entry)

    monkeypatch.setattr("fraudops.review.store.insert_entry", failing)
    response = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "fraud", "disowned": ["tx-0009"]},
    )
    assert 503 == response.status_code
    assert [CaseStatus.OPEN, CaseStatus.OPEN] == [
        parts.desk.cases.get(tx).status for tx in ("tx-0001", "tx-0009")
    ]
    assert ([], []) == (parts.desk.audit.entries(action=AuditAction.VERDICT), parts.labels)


def test_a_repeat_sends_the_labels_of_the_standing_verdict_again(
    parts: Desk, tmp_path: Path
) -> None:
    """The label sink fails the first time: the queue warns that the labels are not
    applied; the same verdict sent again sends every label the verdict made (the case's
    and the disowned payment's, as first made) and says so."""
    parts.decisions.write([make_record(9)])
    parts.open(make_record(1))
    failures = [StoreError("feature store unreachable")] * 2
    sent: list[Label] = []

    async def flaky(label: Label) -> str:
        if failures:
            raise failures.pop()
        sent.append(label)
        return "stored for training and applied to the online state"

    with TestClient(
        build_app(parts, tmp_path, apply_label=flaky),
        base_url="https://testserver",
        follow_redirects=False,
    ) as client:
        sign_in(client, "ann")
        token = csrf_of(client.get("/ui/cases/tx-0001").text)
        first = _verdict(client, "tx-0001", token, "fraud", "tx-0009")
        again = _verdict(client, "tx-0001", token, "fraud", "tx-0009")
    assert "2 labels were not applied: feature store unreachable" in first
    assert "already recorded" in again
    assert "stored for training and applied to the online state" in again
    verdict_at = parts.desk.cases.get("tx-0001").verdict_at
    assert [("tx-0001", verdict_at), ("tx-0009", verdict_at)] == [
        (label.transaction_id, label.known_at) for label in sent
    ]


def test_a_closed_case_can_send_its_labels_again(client: TestClient, parts: Desk) -> None:
    """A closed case's page offers to send its labels again; doing so re-sends the label
    the verdict made, with its first time."""
    parts.open(make_record(1))
    ann = parts.desk.current_user("ann")
    parts.desk.submit_verdict(ann, "tx-0001", Verdict.LEGITIMATE)
    token = sign_in(client, "ann")
    page = client.get("/ui/cases/tx-0001").text
    response = client.post("/ui/cases/tx-0001/labels", data={"csrf": token})
    assert 'action="/ui/cases/tx-0001/labels"' in page
    assert 303 == response.status_code
    assert [("tx-0001", False)] == _labelled(parts)
    assert parts.desk.cases.get("tx-0001").verdict_at == parts.labels[0].known_at


def test_a_payment_whose_case_is_escalated_cannot_be_disowned_by_an_analyst(
    client: TestClient, parts: Desk
) -> None:
    """bob escalated tx-0009. ann, ticking it on tx-0001 of the same card, is refused with
    403 and a message naming the escalation; nothing is recorded: tx-0001 stays open,
    tx-0009 escalated, no label and no verdict in the audit trail."""
    parts.open(make_record(1), make_record(9))
    parts.desk.submit_verdict(parts.desk.current_user("bob"), "tx-0009", Verdict.ESCALATE, "ring")
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "legitimate", "disowned": ["tx-0009"]},
    )
    assert 403 == response.status_code
    assert "tx-0009 is escalated to a lead" in response.text
    assert [CaseStatus.OPEN, CaseStatus.ESCALATED] == [
        parts.desk.cases.get(tx).status for tx in ("tx-0001", "tx-0009")
    ]
    assert ([], []) == (parts.desk.audit.entries(action=AuditAction.VERDICT), parts.labels)


def test_a_lead_disowning_an_escalated_payment_closes_its_case_as_fraud(
    client: TestClient, parts: Desk
) -> None:
    """A lead may: tx-0009's escalated case is closed as fraud by lea with the verdict."""
    parts.open(make_record(1), make_record(9))
    parts.desk.submit_verdict(parts.desk.current_user("bob"), "tx-0009", Verdict.ESCALATE, "ring")
    sign_in(client, "lea")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    _verdict(client, "tx-0001", token, "fraud", "tx-0009")
    case = parts.desk.cases.get("tx-0009")
    assert (CaseStatus.CLOSED, Verdict.FRAUD, "lea") == (case.status, case.verdict, case.verdict_by)
    assert [("tx-0001", True), ("tx-0009", True)] == _labelled(parts)


def test_only_payments_of_the_cards_history_can_be_disowned(
    client: TestClient, parts: Desk
) -> None:
    """A payment not in the card's history, or a disowning with an escalation, is refused
    with the reason, and the case stays open with no label."""
    parts.decisions.write([make_record(9), make_record(7, card="card-2")])
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    other_card = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "fraud", "disowned": ["tx-0007"]},
    )
    escalation = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "escalate", "note": "ring?", "disowned": ["tx-0009"]},
    )
    assert (422, 422) == (other_card.status_code, escalation.status_code)
    assert "only payments in this card&#39;s recent history" in other_card.text
    assert "not an escalation" in escalation.text
    assert (CaseStatus.OPEN, []) == (parts.desk.cases.get("tx-0001").status, parts.labels)


def test_a_disowned_payment_with_an_open_case_has_it_closed_as_fraud(parts: Desk) -> None:
    """tx-0009 and tx-0008 wait in the queue on the same card; bob holds tx-0008. Disowned
    with ann's verdict on tx-0001, tx-0009's case is closed as fraud by ann, audited once as
    a verdict with the reason; tx-0008's stays bob's and open, though labelled fraud too."""
    parts.open(make_record(1), make_record(8), make_record(9))
    ann, bob = (parts.desk.current_user(name) for name in ("ann", "bob"))
    parts.desk.lock(bob, "tx-0008")
    parts.desk.lock(ann, "tx-0001")
    done = parts.desk.submit_verdict(
        ann, "tx-0001", Verdict.LEGITIMATE, disowned=["tx-0009", "tx-0008"]
    )
    cases = {tx: parts.desk.cases.get(tx) for tx in ("tx-0008", "tx-0009")}
    entries = parts.desk.audit.entries(action=AuditAction.VERDICT)
    assert (("tx-0009",), ["tx-0001", "tx-0009", "tx-0008"]) == (
        done.closed_cases,
        [label.transaction_id for label in done.labels],
    )
    assert (CaseStatus.CLOSED, Verdict.FRAUD, "ann") == (
        cases["tx-0009"].status,
        cases["tx-0009"].verdict,
        cases["tx-0009"].verdict_by,
    )
    assert "reached on case tx-0001" in (cases["tx-0009"].verdict_note or "")
    assert (CaseStatus.OPEN, "bob") == (cases["tx-0008"].status, cases["tx-0008"].locked_by)
    assert [1, 1] == [
        sum(entry.subject == tx for entry in entries) for tx in ("tx-0009", "tx-0008")
    ]
