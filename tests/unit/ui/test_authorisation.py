"""Authorisation on every UI route: no session, no page; each role only its own pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from fraudops.api.ui.router import PAGES
from fraudops.review import Role
from tests.unit.ui.conftest import Desk, build_app, csrf_of, make_parts, make_record, sign_in

_OPEN = {"/static/{name}", "/sign-in", "/sign-out"}
"""The only routes a visitor without a session may reach (signing out needs none)."""


def _guarded_routes() -> list[tuple[str, str]]:
    routes: list[tuple[str, str]] = []
    for router in PAGES:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if route.path in _OPEN:
                continue
            path = "/ui" + re.sub(r"\{[^}]+\}", "tx-0001", route.path)
            routes.extend((method, path) for method in sorted(route.methods or ()))
    return routes


GUARDED = _guarded_routes()


def test_every_page_but_sign_in_and_static_files_is_guarded() -> None:
    """The guarded list covers the UI's pages (so the tests below cover every route)."""
    assert {"/ui/queue", "/ui/cases/tx-0001", "/ui/models", "/ui/users", "/ui/audit"} <= {
        path for _, path in GUARDED
    }


@pytest.fixture(scope="module")
def visitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """A client with a visitor's session (not signed in) and its CSRF token, shared by the
    module's route-by-route checks (which change nothing)."""
    folder = tmp_path_factory.mktemp("ui")
    parts = make_parts(folder)
    app = build_app(parts, folder)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, csrf_of(client.get("/ui/sign-in").text)
    parts.decisions.close()


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_without_a_session_every_guarded_route_refuses(
    visitor: tuple[TestClient, str], method: str, path: str
) -> None:
    """A browser is redirected to sign-in; htmx gets 401 with HX-Redirect; JSON a 401 problem.

    The CSRF token is valid, so a POST is refused for the missing sign-in, not the token.
    """
    client, token = visitor
    form = {"csrf": token} if method == "POST" else None
    browser = client.request(method, path, data=form)
    htmx = client.request(method, path, headers={"HX-Request": "true", "X-CSRF-Token": token})
    as_json = client.request(
        method, path, headers={"Accept": "application/json", "X-CSRF-Token": token}
    )
    assert [303, True, 401, "/ui/sign-in", 401, "sign in to continue"] == [
        browser.status_code,
        browser.headers["location"].startswith("/ui/sign-in"),
        htmx.status_code,
        htmx.headers["hx-redirect"],
        as_json.status_code,
        as_json.json()["detail"],
    ]


def test_an_analyst_is_denied_the_models_page(client: TestClient) -> None:
    """Promotion is a lead's lever: an analyst gets 403 naming the permission."""
    sign_in(client, "ann")
    response = client.get("/ui/models")
    assert 403 == response.status_code
    assert "approve_promotion is not allowed" in response.text


def test_a_lead_may_open_the_models_page(client: TestClient) -> None:
    """A lead reaches the models page."""
    sign_in(client, "lea")
    assert 200 == client.get("/ui/models").status_code


@pytest.mark.parametrize(
    ("username", "path", "expected"),
    [
        ("ann", "/ui/audit", 403),
        ("lea", "/ui/audit", 200),
        ("ann", "/ui/audit/export?format=csv", 403),
        ("ann", "/ui/users", 403),
        ("lea", "/ui/users", 403),
        ("ada", "/ui/users", 200),
        ("ann", "/ui/queue?escalated=true", 403),
        ("lea", "/ui/queue?escalated=true", 200),
    ],
)
def test_each_role_reaches_only_its_pages(
    client: TestClient, username: str, path: str, expected: int
) -> None:
    """Audit is for leads and admins, users for admins, escalations for leads."""
    sign_in(client, username)
    assert expected == client.get(path).status_code


def test_navigation_offers_only_what_the_role_may_open(client: TestClient) -> None:
    """An analyst's menu has no Audit, Models or Users link."""
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    assert [True, False, False, False] == [
        'href="/ui/dashboard"' in page,
        'href="/ui/audit"' in page,
        'href="/ui/models"' in page,
        'href="/ui/users"' in page,
    ]


def test_a_disabled_user_is_signed_out_at_the_next_request(client: TestClient, parts: Desk) -> None:
    """Disabling ann ends her session at once, though her cookie is still valid."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    admin = parts.desk.current_user("ada")
    parts.desk.set_active(admin, "ann", False)
    response = client.get("/ui/queue")
    assert 303 == response.status_code


def test_an_admin_changing_a_role_takes_effect_on_the_next_request(
    client: TestClient, parts: Desk
) -> None:
    """Promote ann to lead and the audit page opens for her without signing in again."""
    sign_in(client, "ann")
    assert 403 == client.get("/ui/audit").status_code
    parts.desk.set_role(parts.desk.current_user("ada"), "ann", Role.LEAD)
    assert 200 == client.get("/ui/audit").status_code


def test_pages_carry_security_headers(client: TestClient) -> None:
    """Pages forbid framing and inline scripts and are not cached."""
    response = client.get("/ui/sign-in")
    assert ["DENY", "no-store", True] == [
        response.headers["x-frame-options"],
        response.headers["cache-control"],
        "script-src 'self'" in response.headers["content-security-policy"],
    ]
