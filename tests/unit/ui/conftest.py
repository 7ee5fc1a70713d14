"""The review UI on a real desk (SQLite in a tmp folder), a decision log, and a test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fraudops.api.ui import (
    LabelSink,
    ReviewUi,
    SessionCodec,
    SqlDashboardSource,
    review_ui_router,
)
from fraudops.clock import ManualClock
from fraudops.decide.log import DecisionRecord, SqlDecisionStore
from fraudops.review import (
    CaseKind,
    CaseOpening,
    ReviewDesk,
    Role,
    SqlDecisionReader,
    open_review_desk,
)
from fraudops.types import Action, Decision, Label, Reason, Transaction

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SECRET = "a test secret of enough length"
SLA = timedelta(hours=4)


def make_record(
    number: int,
    *,
    action: Action = Action.REVIEW,
    score: float = 0.5,
    amount: float = 100.0,
    card: str = "card-1",
    terminal: str = "term-1",
    decided_at: datetime | None = None,
    source: str = "model",
) -> DecisionRecord:
    """The decision on transaction ``tx-<number>``, made ``number`` minutes before T0."""
    transaction_id = f"tx-{number:04d}"
    when = decided_at or T0 - timedelta(minutes=number)
    return DecisionRecord(
        decision=Decision(
            transaction_id=transaction_id,
            action=action,
            score=score,
            reasons=(Reason("amount_vs_card_mean", 0.31), Reason("terminal_risk_28d", -0.12)),
            model_version="lgbm-test",
            latency_ms=2.5,
            degraded=source != "model",
            degraded_reason=None if source == "model" else "champion:timeout",
            rule_hits=("high_amount",),
            source=source,
        ),
        transaction=Transaction(
            transaction_id=transaction_id,
            timestamp=when - timedelta(milliseconds=3),
            customer_id=card,
            terminal_id=terminal,
            amount=amount,
        ),
        features={"amount": amount, "terminal_risk_28d": 0.25},
        decided_at=when,
    )


@dataclass
class Desk:
    """The UI's parts as a test sees them: the desk, its clock, the logs, the labels made."""

    desk: ReviewDesk
    clock: ManualClock
    decisions: SqlDecisionStore
    labels: list[Label] = field(default_factory=list)

    def open(self, *records: DecisionRecord, kind: CaseKind = CaseKind.REVIEW) -> None:
        """Log ``records`` as decisions and open a case for each."""
        self.decisions.write(list(records))
        openings = [CaseOpening(r, kind, r.decided_at + SLA) for r in records]
        self.desk.cases.open_cases(openings, self.clock.now())


def make_parts(folder: Path) -> Desk:
    """A desk with ann and bob (analysts), lea (lead) and ada (admin), and a decision log,
    in SQLite files in ``folder``."""
    clock = ManualClock(T0)
    desk = open_review_desk(
        f"sqlite:///{folder / 'review.db'}",
        clock,
        daily_capacity=3,
        sign_in_max_failures=3,
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    for name, role in (
        ("ann", Role.ANALYST),
        ("bob", Role.ANALYST),
        ("lea", Role.LEAD),
        ("ada", Role.ADMIN),
    ):
        desk.users.add(name, role, PASSWORD, by="cli:test", now=clock.now())
    decisions = SqlDecisionStore(f"sqlite:///{folder / 'decisions.db'}", now=clock.now)
    return Desk(desk, clock, decisions)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Desk]:
    """The UI's parts in ``tmp_path`` (see :func:`make_parts`)."""
    made = make_parts(tmp_path)
    yield made
    made.decisions.close()


def build_app(parts: Desk, tmp_path: Path, apply_label: LabelSink | None = None) -> FastAPI:
    """An app serving only the review UI on ``parts``; labels land in ``parts.labels``
    unless ``apply_label`` takes them."""

    async def keep(label: Label) -> str:
        parts.labels.append(label)
        return "recorded"

    def build(app: FastAPI) -> ReviewUi:
        log_url = f"sqlite:///{tmp_path / 'decisions.db'}"
        history = SqlDecisionReader(log_url)
        dashboard = SqlDashboardSource(log_url, f"sqlite:///{tmp_path / 'review.db'}")
        return ReviewUi(
            desk=parts.desk,
            sessions=SessionCodec(SECRET, max_age_s=3600),
            apply_label=apply_label or keep,
            history=history,
            dashboard=dashboard,
            closers=(history.close, dashboard.close),
        )

    app = FastAPI()
    app.include_router(review_ui_router(build))
    return app


@pytest.fixture
def client(parts: Desk, tmp_path: Path) -> Iterator[TestClient]:
    """A browser-like client of the UI (HTTPS, so the Secure cookie is sent back)."""
    app = build_app(parts, tmp_path)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as test_client:
        yield test_client


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign ``username`` in through the form; the CSRF token of the new session."""
    token = csrf_of(client.get("/ui/sign-in").text)
    response = client.post(
        "/ui/sign-in",
        data={"username": username, "password": password, "csrf": token, "next": "/ui/queue"},
    )
    assert 303 == response.status_code, response.text
    return csrf_of(client.get("/ui/queue").text)
