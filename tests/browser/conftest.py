"""Debian's Chromium driven by Playwright against the review UI on a real HTTP port.

The browser is Debian's (``/usr/bin/chromium``): Playwright's own browser builds are
never downloaded. Without it the tests skip and say so; with ``CI=true`` they fail.
The UI runs in uvicorn on a free loopback port, in a thread of the test process, on a
review desk and a decision log in SQLite files; its labels go to the decision log, where
the tests read them back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from fraudops.api.ui import ReviewUi, SessionCodec, SqlDashboardSource, review_ui_router
from fraudops.clock import SystemClock
from fraudops.decide.log import SqlDecisionStore
from fraudops.review import (
    CaseKind,
    CaseOpening,
    ReviewDesk,
    Role,
    SqlDecisionReader,
    open_review_desk,
)
from fraudops.types import Label
from tests.services import free_port, unavailable
from tests.unit.ui.conftest import PASSWORD, make_record

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (shipped in the Python package; it downloads nothing here).

    Module-scoped: while it runs, the sync driver holds an event loop in the main thread,
    and any later test calling ``asyncio.run`` would fail, so it stops with the module.
    """
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (Debian package 'chromium')")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, started once per test module."""
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page; 5 s for anything to happen."""
    context = browser.new_context()
    context.set_default_timeout(5000)
    yield context.new_page()
    context.close()


@dataclass
class Site:
    """The running UI: its address, its desk, and the decision log the labels go to."""

    url: str
    desk: ReviewDesk
    decisions: SqlDecisionStore

    def labels(self, transaction_id: str) -> list[tuple[bool, str]]:
        """The labels stored for a transaction: (is fraud, source)."""
        return [
            (label.is_fraud, label.source.value) for label in self.decisions.labels(transaction_id)
        ]


def _ui_app(folder: Path, desk: ReviewDesk, decisions: SqlDecisionStore) -> FastAPI:
    log_url = f"sqlite:///{folder / 'decisions.db'}"

    async def store(label: Label) -> str:
        await asyncio.to_thread(decisions.write, [], [label])
        return "stored for training"

    def build(app: FastAPI) -> ReviewUi:
        history = SqlDecisionReader(log_url)
        dashboard = SqlDashboardSource(log_url, f"sqlite:///{folder / 'review.db'}")
        return ReviewUi(
            desk=desk,
            sessions=SessionCodec("browser-test session secret", max_age_s=600),
            apply_label=store,
            history=history,
            dashboard=dashboard,
            closers=(history.close, dashboard.close),
        )

    app = FastAPI()
    app.include_router(review_ui_router(build))
    return app


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The UI served on a free port, with ann (analyst) and lea (lead), and three open cases
    on two cards; the costliest (tx-0002: 0.9 × 800) comes first."""
    clock = SystemClock()
    desk = open_review_desk(
        f"sqlite:///{tmp_path / 'review.db'}",
        clock,
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    for name, role in (("ann", Role.ANALYST), ("lea", Role.LEAD)):
        desk.users.add(name, role, PASSWORD, by="cli:test", now=clock.now())
    decisions = SqlDecisionStore(f"sqlite:///{tmp_path / 'decisions.db'}")
    now = datetime.now(UTC)
    records = [
        make_record(
            1, card="card-a", score=0.4, amount=120.0, decided_at=now - timedelta(minutes=50)
        ),
        make_record(
            2, card="card-b", score=0.9, amount=800.0, decided_at=now - timedelta(minutes=20)
        ),
        make_record(
            3, card="card-a", score=0.6, amount=90.0, decided_at=now - timedelta(minutes=5)
        ),
    ]
    decisions.write(records)
    desk.cases.open_cases(
        [CaseOpening(r, CaseKind.REVIEW, r.decided_at + timedelta(hours=4)) for r in records], now
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            _ui_app(tmp_path, desk, decisions), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="ui-server", daemon=True)
    thread.start()
    give_up = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > give_up or not thread.is_alive():
            raise RuntimeError("the UI server did not start within 10 s")
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", desk, decisions)
    finally:
        server.should_exit = True
        thread.join(10)
        decisions.close()
