"""Champion moves on the models page are made on what the page showed: a move on a page
that is out of date (another lead first, a stale tab, a double click, a new challenger) is
refused with 409, moving and auditing nothing; the page reads the service's registry and
says how the service takes a move."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Route, sync_playwright

from fraudops.api.ui.models import ModelsSource
from fraudops.api.ui.pages import TEMPLATES
from fraudops.errors import StoreError
from fraudops.learn.registry import AliasChange, lineage_from_model_dir, open_registry
from fraudops.review import AuditAction, move_champion
from fraudops.settings import ServiceSettings, Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import TrainedLake
from tests.services import unavailable
from tests.unit.learn.mlflow_store import fresh_mlflow_db
from tests.unit.ui.conftest import Desk, sign_in
from tests.unit.ui.test_models_page import audit, champion, models_client

STATIC = TEMPLATES.parent / "static"
CLICK_AGAIN = """() => document.addEventListener("submit", (event) => {
  if (window.clickedAgain) return;
  window.clickedAgain = true;
  setTimeout(() => event.submitter.click(), 100);
}, true)"""
"""Make the page click a form's button again 100 ms after it is first sent, while the first
request is unanswered (Playwright's own second click would wait for that navigation)."""


@pytest.fixture
def registry(tmp_path: Path, trained_lake: TrainedLake) -> Path:
    """A registry of versions 1, 2 and 3: champion 2 (moved there from 1), challenger 3."""
    root = tmp_path / "registry"
    fresh_mlflow_db(root)
    models = open_registry(root)
    lineage = lineage_from_model_dir(trained_lake.model_dir, trained_by="ana")
    for _ in range(3):
        models.register(trained_lake.model_dir, lineage=lineage)
    models.set_alias("champion", 1, actor="ana", reason="first model")
    models.set_alias("champion", 2, actor="ana", reason="retrained on May")
    models.set_alias("challenger", 3, actor="ana", reason="retrained on June")
    models.close()
    return root


@pytest.fixture
def leads(parts: Desk, tmp_path: Path, registry: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two browsers on the models page: lea's (a lead) and ada's (an admin), signed in."""
    with ExitStack() as stack:
        lea, ada = (
            stack.enter_context(contextmanager(models_client)(parts, tmp_path, registry))
            for _ in range(2)
        )
        sign_in(lea, "lea")
        sign_in(ada, "ada")
        yield lea, ada


def form_of(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form that posts to ``action`` (the CSRF token, and
    what the page showed)."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert form is not None, f"the page has no form posting to {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(0)))


def alias_moves(registry: Path) -> list[tuple[str, int, str]]:
    """The champion's moves in the alias history: action, to which version, by whom."""
    models = open_registry(registry)
    try:
        return [(c.action, c.version, c.actor) for c in models.history("champion")]
    finally:
        models.close()


def test_the_forms_carry_the_versions_the_page_shows(leads: tuple[TestClient, TestClient]) -> None:
    """The promotion form names champion 2 and challenger 3; the rollback form champion 2
    and version 1, the one it restores."""
    lea, _ = leads
    html = lea.get("/ui/models").text
    promote, rollback = form_of(html, "/ui/models/promote"), form_of(html, "/ui/models/rollback")
    assert ({"champion": "2", "version": "3"}, {"champion": "2", "version": "1"}) == (
        {name: promote[name] for name in ("champion", "version")},
        {name: rollback[name] for name in ("champion", "version")},
    )


def test_a_rollback_another_lead_made_first_is_refused(
    parts: Desk, leads: tuple[TestClient, TestClient], registry: Path
) -> None:
    """lea and ada both see "Roll back to version 1" while 2 is champion; lea's click puts 1
    back; ada's, on her now stale page, is refused with 409 instead of putting 2 back, and
    nothing of hers is moved or audited."""
    lea, ada = leads
    lea_page, ada_page = lea.get("/ui/models").text, ada.get("/ui/models").text
    made = lea.post(
        "/ui/models/rollback", data={**form_of(lea_page, "/ui/models/rollback"), "reason": "alerts"}
    )
    refused = ada.post(
        "/ui/models/rollback", data={**form_of(ada_page, "/ui/models/rollback"), "reason": "FP up"}
    )
    assert (303, 409, 1) == (made.status_code, refused.status_code, champion(registry))
    assert "Not done: the champion is version 1 now, not version 2" in refused.text
    assert [("lea", AuditAction.ROLLBACK, "alerts", 1)] == audit(parts)
    assert [("set", 1, "ana"), ("set", 2, "ana"), ("rollback", 1, "lea")] == alias_moves(registry)


def test_a_double_submitted_rollback_is_made_once(
    parts: Desk, leads: tuple[TestClient, TestClient], registry: Path
) -> None:
    """The same rollback form sent twice (a double click) rolls back once: the second is
    refused with 409, and there is one rollback in the history and the audit trail."""
    lea, _ = leads
    form = {**form_of(lea.get("/ui/models").text, "/ui/models/rollback"), "reason": "alerts"}
    first, second = (lea.post("/ui/models/rollback", data=form) for _ in range(2))
    assert (303, 409, 1) == (first.status_code, second.status_code, champion(registry))
    assert [("lea", AuditAction.ROLLBACK, "alerts", 1)] == audit(parts)
    assert ["set", "set", "rollback"] == [action for action, _, _ in alias_moves(registry)]


def test_a_promotion_after_the_challenger_changed_is_refused(
    parts: Desk, leads: tuple[TestClient, TestClient], registry: Path
) -> None:
    """The page reads "Promote version 3"; someone points the challenger at 1 meanwhile
    (``fraudops models alias``). lea's click is refused with 409, naming the new
    challenger, and the page offers what is there now; nothing is promoted or audited."""
    lea, _ = leads
    form = {**form_of(lea.get("/ui/models").text, "/ui/models/promote"), "reason": "better AP"}
    models = open_registry(registry)
    models.set_alias("challenger", 1, actor="cli:ben", reason="keep the old one in shadow")
    models.close()
    response = lea.post("/ui/models/promote", data=form)
    assert (409, 2, []) == (response.status_code, champion(registry), audit(parts))
    assert "the challenger is version 1 now, not version 3" in response.text
    assert "Promote version 1 to champion" in response.text


def test_a_move_that_does_not_say_what_the_page_showed_is_refused(
    parts: Desk, leads: tuple[TestClient, TestClient], registry: Path
) -> None:
    """A promotion or rollback posted without the champion and version the page showed is
    refused (422): the server never moves to whatever the registry holds at click time."""
    lea, _ = leads
    token = form_of(lea.get("/ui/models").text, "/ui/models/rollback")["csrf"]
    answers = [
        lea.post(f"/ui/models/{move}", data={"csrf": token, "reason": "why"}).status_code
        for move in ("promote", "rollback")
    ]
    assert ([422, 422], 2, []) == (answers, champion(registry), audit(parts))


def test_a_move_the_audit_trail_cannot_record_is_undone(registry: Path) -> None:
    """A promotion of the challenger the page showed, which the audit trail then fails to
    record, is moved back at once: the champion is 2 again, and the history says why."""

    def trail_down(change: AliasChange) -> None:
        raise StoreError("review database unreachable")

    models = open_registry(registry)
    try:
        with pytest.raises(StoreError, match="not recorded in the audit trail, so it was undone"):
            move_champion(
                models,
                AuditAction.PROMOTION,
                actor="lea",
                reason="better AP",
                record=trail_down,
                to=3,
                expect={"champion": 2},
            )
    finally:
        models.close()
    assert 2 == champion(registry)
    assert [("set", 3, "lea"), ("rollback", 2, "lea")] == alias_moves(registry)[-2:]


@pytest.mark.slow
def test_a_second_click_in_a_browser_does_not_send_the_move_again(
    leads: tuple[TestClient, TestClient],
) -> None:
    """Clicking "Roll back to version 1" again in Chromium while the first click's request
    is unanswered sends nothing more: ui.js guards the page's move forms as it guards the
    verdict form."""
    lea, _ = leads
    html = lea.get("/ui/models").text
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (Debian package 'chromium')")
    sent: list[Route] = []

    def answer(route: Route) -> None:
        request = route.request
        if request.method == "POST":
            sent.append(route)  # left unanswered for now, as a slow server would
        elif request.url.endswith("/ui/models"):
            route.fulfill(status=200, content_type="text/html", body=html)
        else:
            route.fulfill(path=STATIC / request.url.rsplit("/", 1)[-1])

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(5000)
            page.route("**/*", answer)
            page.goto("https://testserver/ui/models")
            page.get_by_label("Why version 1 should decide again").fill("alerts")
            page.evaluate(CLICK_AGAIN)
            page.get_by_role("button", name="Roll back to version 1").click(no_wait_after=True)
            page.wait_for_timeout(500)
            urls = [route.request.url for route in sent]
            for route in sent:
                route.abort()
        finally:
            browser.close()
    assert ["https://testserver/ui/models/rollback"] == urls


def test_the_page_reads_the_registry_the_service_follows(tmp_path: Path) -> None:
    """With service.registry_dir set (``fraudops serve --registry``), the models page reads
    that registry, not <data_dir>/registry; without it, <data_dir>/registry."""
    named = Settings(data_dir=tmp_path, service=ServiceSettings(registry_dir=tmp_path / "reg"))
    assert (tmp_path / "reg", tmp_path / "registry") == (
        ModelsSource.from_settings(named).registry_root,
        ModelsSource.from_settings(Settings(data_dir=tmp_path)).registry_root,
    )


def test_the_page_says_a_following_service_takes_a_move_within_seconds(
    leads: tuple[TestClient, TestClient],
) -> None:
    """The hint under the levers says a service following the alias swaps within seconds
    and one on a fixed directory needs a restart, not that every move waits for one."""
    lea, _ = leads
    hint = " ".join(re.sub(r"<[^>]+>", "", lea.get("/ui/models").text).split())
    assert (True, True, False) == (
        "takes the new champion within seconds of a move" in hint,
        "keeps its model until it is restarted on the new one" in hint,
        "takes effect at its next start" in hint,
    ), hint
