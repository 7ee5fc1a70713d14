"""The case page: what it shows, the lock it takes, and verdicts into labels."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from fraudops.errors import StoreError
from fraudops.review import AuditAction, CaseStatus, Verdict
from fraudops.types import Label, LabelSource
from tests.unit.ui.conftest import T0, Desk, build_app, csrf_of, make_record, sign_in


def test_case_page_shows_transaction_score_reasons_rules_and_history(
    client: TestClient, parts: Desk
) -> None:
    """The page has the amount, score, reason chart, rule hits and the card's history."""
    parts.decisions.write([make_record(9, terminal="term-9")])  # earlier, same card
    parts.open(make_record(1, amount=321.5, score=0.875))
    sign_in(client, "ann")
    page = client.get("/ui/cases/tx-0001").text
    assert [True] * 6 == [
        "321.50 EUR" in page,
        "0.875" in page,
        '<svg class="chart"' in page and "amount_vs_card_mean" in page,
        '<span class="chip">high_amount</span>' in page,
        "<td>tx-0009</td>" in page,
        "<td>term-9</td>" in page,
    ]


def test_case_page_flags_a_degraded_decision(client: TestClient, parts: Desk) -> None:
    """A decision made by a fallback says it was degraded, and why."""
    parts.open(make_record(1, source="rules"))
    sign_in(client, "ann")
    assert "yes: champion:timeout" in client.get("/ui/cases/tx-0001").text


def test_case_page_documents_the_keyboard_shortcuts(client: TestClient, parts: Desk) -> None:
    """The three actions carry their keys, and the page says which is which."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    page = client.get("/ui/cases/tx-0001").text
    assert 3 == sum(f'data-key="{key}"' in page for key in "fle")
    assert "<kbd>f</kbd> confirm fraud" in page


def test_opening_a_case_locks_it_to_the_analyst(client: TestClient, parts: Desk) -> None:
    """After ann opens the page, the case's lock is hers."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    client.get("/ui/cases/tx-0001")
    assert "ann" == parts.desk.cases.get("tx-0001").locked_by


def test_case_locked_by_another_is_read_only_with_409(client: TestClient, parts: Desk) -> None:
    """A case bob holds opens for ann with 409, says bob holds it, and offers no actions."""
    parts.open(make_record(1))
    parts.desk.lock(parts.desk.current_user("bob"), "tx-0001")
    sign_in(client, "ann")
    response = client.get("/ui/cases/tx-0001")
    assert 409 == response.status_code
    assert "bob is working on this case (locked until 09:15 UTC)" in response.text
    assert 'id="verdict-form"' not in response.text


def test_verdict_on_a_case_locked_by_another_is_refused(client: TestClient, parts: Desk) -> None:
    """A fraud verdict posted by ann on bob's case is refused with 409; nothing changes."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    parts.desk.unlock(parts.desk.current_user("ann"), "tx-0001")
    parts.desk.lock(parts.desk.current_user("bob"), "tx-0001")
    response = client.post(
        "/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "fraud", "note": ""}
    )
    assert 409 == response.status_code
    assert "bob is working on this case" in response.text
    assert (CaseStatus.OPEN, []) == (parts.desk.cases.get("tx-0001").status, parts.labels)


def test_fraud_verdict_closes_the_case_and_sends_its_label(client: TestClient, parts: Desk) -> None:
    """Confirm fraud closes the case, sends an analyst label, and the queue says so."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post(
        "/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "fraud", "note": "known ring"}
    )
    case = parts.desk.cases.get("tx-0001")
    queue = client.get("/ui/queue").text
    assert "/ui/queue" == response.headers["location"]
    assert (CaseStatus.CLOSED, Verdict.FRAUD, "ann") == (case.status, case.verdict, case.verdict_by)
    assert [("tx-0001", True, LabelSource.ANALYST, T0)] == [
        (label.transaction_id, label.is_fraud, label.source, label.known_at)
        for label in parts.labels
    ]
    assert "tx-0001 confirmed fraud. Its label was recorded." in queue
    assert 'data-transaction="tx-0001"' not in queue


def test_a_repeated_verdict_sends_the_same_label_again(client: TestClient, parts: Desk) -> None:
    """Posting the same verdict twice (a double click) records one verdict and sends the
    very same label twice (the stores keep it once), the second time saying so."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    for _ in range(2):
        client.post("/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "legitimate"})
    queue = client.get("/ui/queue").text
    assert 1 == len(parts.desk.audit.entries(action=AuditAction.VERDICT))
    assert 1 == len(set(parts.labels))
    assert [False, False] == [label.is_fraud for label in parts.labels]
    assert "that verdict was already recorded; its labels were sent again" in queue


def test_escalation_needs_a_note(client: TestClient, parts: Desk) -> None:
    """Escalating without a note is refused with 422 and the reason; the case stays open."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post("/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "escalate"})
    assert 422 == response.status_code
    assert "an escalation needs a note" in response.text
    assert CaseStatus.OPEN == parts.desk.cases.get("tx-0001").status


def test_escalated_case_is_read_only_for_an_analyst(client: TestClient, parts: Desk) -> None:
    """Once escalated, the case opens read-only for an analyst with 403."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "escalate", "note": "odd terminal"},
    )
    response = client.get("/ui/cases/tx-0001")
    assert 403 == response.status_code
    assert 'id="verdict-form"' not in response.text


def test_an_unknown_verdict_is_refused_with_422(client: TestClient, parts: Desk) -> None:
    """A verdict that is not fraud, legitimate or escalate names the field at fault."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post("/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "maybe"})
    assert 422 == response.status_code
    assert "verdict:" in response.text


def test_a_missing_case_is_404(client: TestClient) -> None:
    """Opening a transaction with no case answers 404 with the id."""
    sign_in(client, "ann")
    response = client.get("/ui/cases/tx-nope")
    assert 404 == response.status_code
    assert "tx-nope" in response.text


def test_verdict_without_csrf_token_is_refused(client: TestClient, parts: Desk) -> None:
    """A verdict post without the session's token is refused and changes nothing."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    client.get("/ui/cases/tx-0001")
    response = client.post("/ui/cases/tx-0001/verdict", data={"verdict": "fraud"})
    assert 403 == response.status_code
    assert CaseStatus.OPEN == parts.desk.cases.get("tx-0001").status


def test_htmx_lock_renewal_sends_the_token_in_a_header(client: TestClient, parts: Desk) -> None:
    """The lock renewal htmx posts carries the token as X-CSRF-Token and answers a fragment."""
    parts.open(make_record(1))
    token = sign_in(client, "ann")
    client.get("/ui/cases/tx-0001")
    response = client.post(
        "/ui/cases/tx-0001/lock", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert 200 == response.status_code
    assert "Locked to you until 09:15 UTC" in response.text


def test_the_page_renews_its_lock_well_before_a_short_lock_lapses(
    client: TestClient, parts: Desk
) -> None:
    """With one-minute locks, the open page renews its lock every 20 s (a third of it)."""
    parts.desk.lock_ttl = timedelta(minutes=1)
    parts.open(make_record(1))
    sign_in(client, "ann")
    assert 'hx-trigger="every 20s"' in client.get("/ui/cases/tx-0001").text


def test_giving_a_case_back_releases_the_lock(client: TestClient, parts: Desk) -> None:
    """Give back unlocks the case and returns to the queue."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post("/ui/cases/tx-0001/unlock", data={"csrf": token})
    assert "/ui/queue" == response.headers["location"]
    assert parts.desk.cases.get("tx-0001").locked_by is None


def test_a_label_that_cannot_be_applied_is_said_and_the_verdict_stands(
    parts: Desk, tmp_path: Path
) -> None:
    """When the label sink fails, the verdict is kept and the queue warns the label is not
    applied, with the sink's reason."""

    async def broken(label: Label) -> str:
        raise StoreError("feature store unreachable")

    parts.open(make_record(1))
    app = build_app(parts, tmp_path, apply_label=broken)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        sign_in(client, "ann")
        token = csrf_of(client.get("/ui/cases/tx-0001").text)
        client.post("/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "fraud"})
        queue = client.get("/ui/queue").text
    assert Verdict.FRAUD == parts.desk.cases.get("tx-0001").verdict
    assert 'class="flash warning"' in queue
    assert "its label was not applied: feature store unreachable" in queue
