"""The review UI inside the decision service: mounted only when enabled, labels to the runtime."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.routing import NoMatchFound

from fraudops.api import create_app
from fraudops.clock import SystemClock
from fraudops.decide.log import SqlDecisionStore
from fraudops.errors import CaseNotFoundError
from fraudops.review import CaseKind, CaseOpening, Role, open_review_desk
from fraudops.settings import ReviewSettings, Settings
from tests.conftest import TrainedLake
from tests.unit.api.conftest import service_settings
from tests.unit.ui.conftest import PASSWORD, csrf_of, make_record, sign_in


def _settings(tmp_path: Path, model_dir: Path, secret: str | None) -> Settings:
    review = ReviewSettings(
        url=f"sqlite:///{tmp_path / 'review.db'}",
        session_secret=None if secret is None else SecretStr(secret),
    )
    return service_settings(tmp_path, model_dir).model_copy(update={"review": review})


def test_without_a_session_secret_there_is_no_ui(tmp_path: Path) -> None:
    """A service without review.session_secret serves no /ui routes."""
    app = create_app(_settings(tmp_path, tmp_path / "model", None))
    with pytest.raises(NoMatchFound):
        app.url_path_for("ui.queue")


@pytest.mark.slow
def test_a_verdict_in_the_service_ui_reaches_the_decision_runtime(
    tmp_path: Path, trained_lake: TrainedLake
) -> None:
    """In the full service, a fraud verdict's label goes through DecisionService.learn into
    the decision log's labels."""
    settings = _settings(tmp_path, trained_lake.model_dir, "a service-test secret")
    desk = open_review_desk(
        f"sqlite:///{tmp_path / 'review.db'}",
        SystemClock(),
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    now = datetime.now(UTC)
    desk.users.add("ann", Role.ANALYST, PASSWORD, by="cli:test", now=now)
    record = make_record(1, decided_at=now - timedelta(minutes=3))
    desk.cases.open_cases([CaseOpening(record, CaseKind.REVIEW, now + timedelta(hours=1))], now)
    desk.close()
    with TestClient(
        create_app(settings), base_url="https://testserver", follow_redirects=False
    ) as client:
        sign_in(client, "ann")
        token = csrf_of(client.get("/ui/cases/tx-0001").text)
        client.post("/ui/cases/tx-0001/verdict", data={"csrf": token, "verdict": "fraud"})
        queue = client.get("/ui/queue").text
    log = SqlDecisionStore(settings.decision_log.url)
    labels = log.labels("tx-0001")
    log.close()
    assert "tx-0001 confirmed fraud. Its label was stored for training" in queue
    assert [(True, "analyst")] == [(label.is_fraud, label.source.value) for label in labels]


@pytest.mark.slow
def test_review_decisions_become_cases_while_the_service_runs(
    tmp_path: Path, trained_lake: TrainedLake
) -> None:
    """The intake worker the UI starts opens a case for a decision the policy sends to review."""
    from fraudops.settings import PolicySettings
    from tests.unit.api.conftest import HEADERS

    settings = _settings(tmp_path, trained_lake.model_dir, "an intake-test secret")
    settings = settings.model_copy(
        update={
            "policy": PolicySettings(review_threshold=0.0, decline_threshold=1.0),
            "review": settings.review.model_copy(
                update={"intake_settle_s": 0.0, "intake_interval_s": 0.05}
            ),
        }
    )
    body = {
        "transaction_id": "tx-intake-1",
        "timestamp": datetime.now(UTC).isoformat(),
        "customer_id": "c-1",
        "terminal_id": "t-1",
        "amount": 25.0,
    }
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        decided = client.post("/v1/transactions", json=body, headers=HEADERS).json()
        desk = open_review_desk(settings.review.database_url(settings.data_dir), SystemClock())
        opened = None
        for _ in range(100):
            try:
                opened = desk.cases.get("tx-intake-1")
            except CaseNotFoundError:
                opened = None
            if opened is not None:
                break
            time.sleep(0.1)
        desk.close()
    assert ("review", "tx-intake-1") == (
        decided["action"],
        None if opened is None else opened.transaction_id,
    )


def test_the_per_address_sign_in_limit_comes_from_the_settings(tmp_path: Path) -> None:
    """review.sign_in_max_client_failures reaches the service's limiter: two failures under
    two usernames from one address, with the address limit at 2, refuse the third try even
    with the right password; the per-username limit alone would not."""
    settings = _settings(tmp_path, tmp_path / "model", "a sign-in-limit secret")
    review = settings.review.model_copy(update={"sign_in_max_client_failures": 2})
    settings = settings.model_copy(update={"review": review})
    desk = open_review_desk(
        review.database_url(tmp_path),
        SystemClock(),
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    desk.users.add("ann", Role.ANALYST, PASSWORD, by="cli:test", now=datetime.now(UTC))
    desk.close()
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        statuses = []
        for username, password in (("bob", "wrong"), ("eve", "wrong"), ("ann", PASSWORD)):
            token = csrf_of(client.get("/ui/sign-in").text)
            form = {"username": username, "password": password, "csrf": token, "next": "/"}
            statuses.append(client.post("/ui/sign-in", data=form).status_code)
    assert [401, 401, 429] == statuses
