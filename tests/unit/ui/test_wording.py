"""What the pages say: plain words for people, not codes, raw times or stray decimals."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fraudops.api.ui.pages import duration
from fraudops.api.ui.router import runtime_labels
from fraudops.decide.service import LabelOutcome
from fraudops.errors import CaseClosedError
from fraudops.review import Verdict
from fraudops.types import Label, LabelSource
from tests.unit.ui.conftest import T0, Desk, build_app, csrf_of, make_record, sign_in


@pytest.mark.parametrize(
    ("length", "said"),
    [
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=7), "7 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(days=1), "1 d"),
        (timedelta(days=3, hours=4, minutes=10), "3 d 4 h"),
        (-timedelta(minutes=61), "1 h 1 min"),
    ],
)
def test_durations_read_the_way_people_say_them(length: timedelta, said: str) -> None:
    """No zero parts ("1 h", not "1 h 00 min"), no padded minutes."""
    assert said == duration(length)


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        (None, "stored for training and applied to the online state"),
        ("unchanged", "the online state already held this label"),
        ("unknown_transaction", "the online state does not hold this payment"),
        ("known_before_transaction", "known before its payment happened"),
        ("past_window", "older than its terminal's risk windows"),
        ("timeout", "not applied to the online state (timeout)"),
    ],
)
def test_the_runtime_says_what_became_of_a_label_in_plain_words(
    reason: str | None, sentence: str
) -> None:
    """Each outcome of ``DecisionService.learn`` is a sentence, not a reason code."""

    async def learn(label: Label) -> LabelOutcome:
        return LabelOutcome(stored=True, applied=reason is None, reason=reason)

    app = FastAPI()
    app.state.runtime = SimpleNamespace(service=SimpleNamespace(learn=learn))
    label = Label("tx-0001", True, LabelSource.ANALYST, T0)

    async def apply() -> str:
        return await runtime_labels(app)(label)

    account = asyncio.run(apply())
    assert sentence in account
    assert "_" not in account.replace("(timeout)", "")


def test_a_verdicts_flash_reports_every_label_not_only_the_first(
    parts: Desk, tmp_path: Path
) -> None:
    """With two disowned payments, the flash groups the three labels by what became of
    them and names each transaction."""
    parts.decisions.write([make_record(8), make_record(9)])
    parts.open(make_record(1))

    async def sink(label: Label) -> str:
        if label.transaction_id == "tx-0001":
            return "stored for training and applied to the online state"
        return "stored for training; the online state does not hold this payment"

    app = build_app(parts, tmp_path, apply_label=sink)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        sign_in(client, "ann")
        token = csrf_of(client.get("/ui/cases/tx-0001").text)
        client.post(
            "/ui/cases/tx-0001/verdict",
            data={"csrf": token, "verdict": "fraud", "disowned": ["tx-0008", "tx-0009"]},
        )
        queue = client.get("/ui/queue").text
    assert "tx-0001: stored for training and applied to the online state" in queue
    assert "tx-0008 and tx-0009: stored for training; the online state does not hold" in queue


def test_a_shed_decision_says_it_was_shed_not_that_the_feature_store_failed(
    client: TestClient, parts: Desk
) -> None:
    """A case whose decision was shed at admission, with no features, says so."""
    record = make_record(1, source="rules")
    decision = dataclasses.replace(record.decision, degraded_reason="admission:shed")
    parts.open(dataclasses.replace(record, decision=decision, features=None))
    sign_in(client, "ann")
    page = client.get("/ui/cases/tx-0001").text
    assert "feature store failed" not in page
    assert "shed" in page.split("No features were served", 1)[1][:300]


def test_an_escalated_case_tells_an_analyst_it_waits_for_a_lead(
    client: TestClient, parts: Desk
) -> None:
    """Opened by an analyst, an escalated case says in words that it waits for a lead,
    not which permission is missing."""
    parts.open(make_record(1))
    parts.desk.submit_verdict(parts.desk.current_user("bob"), "tx-0001", Verdict.ESCALATE, "ring")
    sign_in(client, "ann")
    page = client.get("/ui/cases/tx-0001").text
    assert "escalated to a lead by bob" in page
    assert "waits for a lead" in page
    assert "resolve_escalations" not in page


def test_a_lead_is_not_offered_to_escalate_an_escalated_case(
    client: TestClient, parts: Desk
) -> None:
    """On an escalated case a lead sees fraud and legitimate, not escalate; a posted
    escalation with a new note says the note was not kept."""
    parts.open(make_record(1))
    parts.desk.submit_verdict(parts.desk.current_user("bob"), "tx-0001", Verdict.ESCALATE, "ring")
    sign_in(client, "lea")
    page = client.get("/ui/cases/tx-0001").text
    response = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": csrf_of(page), "verdict": "escalate", "note": "my own view"},
    )
    queue = client.get(response.headers["location"]).text
    assert ['data-key="f"', 'data-key="l"'] == [
        key for key in ('data-key="f"', 'data-key="l"', 'data-key="e"') if key in page
    ]
    assert "already escalated to a lead by bob; your note was not saved" in queue


def test_a_closed_case_is_refused_with_a_readable_time(parts: Desk) -> None:
    """The refusal of a second verdict says when the first was given, to the second."""
    parts.open(make_record(1))
    parts.clock.advance(timedelta(microseconds=123456))
    ann = parts.desk.current_user("ann")
    parts.desk.submit_verdict(ann, "tx-0001", Verdict.FRAUD)
    with pytest.raises(CaseClosedError) as refused:
        parts.desk.submit_verdict(ann, "tx-0001", Verdict.LEGITIMATE)
    assert "fraud by 'ann' at 2024-03-01 09:00:00 UTC" in str(refused.value)


def test_user_text_is_isolated_from_the_page_around_it(client: TestClient, parts: Desk) -> None:
    """An escalation note with a right-to-left override is set inside <bdi>, so it cannot
    turn the text after it around."""
    parts.open(make_record(1))
    note = "\u202etxet desrever"
    parts.desk.submit_verdict(parts.desk.current_user("bob"), "tx-0001", Verdict.ESCALATE, note)
    sign_in(client, "lea")
    assert f"<bdi>{note}</bdi>" in client.get("/ui/cases/tx-0001").text


def test_every_page_names_its_icon_so_no_favicon_is_fetched(client: TestClient) -> None:
    """The page head carries an inline icon (the browser then asks for no /favicon.ico)."""
    assert '<link rel="icon" href="data:image/svg+xml,' in client.get("/ui/sign-in").text
