"""Signing in and out of the review UI: sessions, CSRF, the rate limit."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fraudops.api.ui.session import COOKIE
from tests.unit.ui.conftest import PASSWORD, csrf_of, sign_in


def test_sign_in_page_carries_a_csrf_token_and_sets_a_hardened_cookie(client: TestClient) -> None:
    """The sign-in form has a CSRF token, and the session cookie is HttpOnly, Secure, Lax."""
    response = client.get("/ui/sign-in")
    cookie = response.headers["set-cookie"]
    assert 200 == response.status_code
    assert csrf_of(response.text)
    assert [True, True, True, True] == [
        cookie.startswith(f"{COOKIE}="),
        "HttpOnly" in cookie,
        "Secure" in cookie,
        "SameSite=lax" in cookie,
    ]


def test_right_password_signs_in_and_lands_on_the_queue(client: TestClient) -> None:
    """A good sign-in redirects to the queue, which then names the user."""
    sign_in(client, "ann")
    page = client.get("/ui/queue")
    assert 200 == page.status_code
    assert "ann · analyst" in page.text


def test_wrong_password_is_refused_with_401_and_no_session(client: TestClient) -> None:
    """A wrong password shows the form again with 401; the queue still wants a sign-in."""
    token = csrf_of(client.get("/ui/sign-in").text)
    response = client.post(
        "/ui/sign-in", data={"username": "ann", "password": "wrong password!", "csrf": token}
    )
    assert 401 == response.status_code
    assert "wrong username or password" in response.text
    assert 303 == client.get("/ui/queue").status_code


def test_sign_in_without_the_csrf_token_signs_nobody_in(client: TestClient) -> None:
    """A sign-in post without the session's CSRF token (a forged one, or a form left open
    past its session) signs nobody in: it goes back to the sign-in form, which says why."""
    client.get("/ui/sign-in")
    response = client.post("/ui/sign-in", data={"username": "ann", "password": PASSWORD})
    assert (303, "/ui/sign-in") == (response.status_code, response.headers["location"])
    assert "The sign-in form had expired" in client.get("/ui/sign-in").text
    assert 303 == client.get("/ui/queue").status_code


def test_sign_in_is_rate_limited_after_repeated_failures(client: TestClient) -> None:
    """After the desk's limit of failures, even the right password gets 429 and Retry-After."""
    token = csrf_of(client.get("/ui/sign-in").text)
    for _ in range(3):
        client.post("/ui/sign-in", data={"username": "ann", "password": "nope", "csrf": token})
    response = client.post(
        "/ui/sign-in", data={"username": "ann", "password": PASSWORD, "csrf": token}
    )
    assert 429 == response.status_code
    assert "too many sign-in attempts" in response.text
    assert int(response.headers["retry-after"]) > 0


def test_one_users_failures_do_not_lock_out_colleagues_at_the_same_address(
    client: TestClient,
) -> None:
    """bob failing up to the desk's limit from the office's one address is refused (429) with
    the right password; lea, from that address, still signs in."""
    token = csrf_of(client.get("/ui/sign-in").text)
    for _ in range(3):
        client.post("/ui/sign-in", data={"username": "bob", "password": "nope", "csrf": token})
    bob = client.post("/ui/sign-in", data={"username": "bob", "password": PASSWORD, "csrf": token})
    lea = client.post("/ui/sign-in", data={"username": "lea", "password": PASSWORD, "csrf": token})
    assert (429, 303) == (bob.status_code, lea.status_code)


def test_signing_in_replaces_the_csrf_token(client: TestClient) -> None:
    """The token a visitor had before sign-in is not the signed-in session's token."""
    before = csrf_of(client.get("/ui/sign-in").text)
    after = sign_in(client, "ann")
    assert before != after


def test_sign_out_ends_the_session(client: TestClient) -> None:
    """After signing out, the queue redirects to sign-in again."""
    token = sign_in(client, "ann")
    response = client.post("/ui/sign-out", data={"csrf": token})
    assert 303 == response.status_code
    assert "/ui/sign-in" == response.headers["location"]
    assert 303 == client.get("/ui/queue").status_code


def test_a_forged_cookie_is_ignored(client: TestClient) -> None:
    """A cookie not signed with the secret counts as no session."""
    client.cookies.set(COOKIE, "eyJ1IjoiYWRhIn0.forged.signature", domain="testserver")
    response = client.get("/ui/queue")
    assert 303 == response.status_code


def test_next_must_stay_inside_the_ui(client: TestClient) -> None:
    """A ``next`` pointing off-site is replaced by the queue (no open redirect)."""
    token = csrf_of(client.get("/ui/sign-in").text)
    response = client.post(
        "/ui/sign-in",
        data={"username": "ann", "password": PASSWORD, "csrf": token, "next": "//evil.example"},
    )
    assert "/ui/queue" == response.headers["location"]


def test_signing_in_from_a_second_tab_while_signed_in_goes_on(client: TestClient) -> None:
    """A sign-in form loaded before signing in elsewhere (its token now stale) does not
    answer 403: the signed-in user is sent on to the queue, told they are signed in."""
    stale = csrf_of(client.get("/ui/sign-in").text)
    sign_in(client, "ann")
    response = client.post(
        "/ui/sign-in", data={"username": "ann", "password": PASSWORD, "csrf": stale}
    )
    assert (303, "/ui/queue") == (response.status_code, response.headers["location"])
    assert "already signed in as ann" in client.get("/ui/queue").text


def test_a_stale_sign_out_form_after_signing_out_goes_to_sign_in(client: TestClient) -> None:
    """Signing out from a second tab after the first signed out lands on the sign-in page."""
    token = sign_in(client, "ann")
    client.post("/ui/sign-out", data={"csrf": token})
    response = client.post("/ui/sign-out", data={"csrf": token})
    assert (303, "/ui/sign-in") == (response.status_code, response.headers["location"])
    assert "You are signed out" in client.get("/ui/sign-in").text
