"""Text from the browser is checked once, at the UI's edge: a control character such as
NUL (which PostgreSQL cannot store) is refused with 422 before any store sees it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fraudops.api.ui.text import unreadable_character
from fraudops.review import CaseStatus
from tests.unit.ui.conftest import PASSWORD, Desk, csrf_of, make_record, sign_in


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a note\nover two lines\twith a tab\r\n", None),
        ("ann\x00", "\x00"),
        ("bell\x07", "\x07"),
        ("\u202eright-to-left override", None),
        ("a lone surrogate \ud800", "\ud800"),
    ],
)
def test_control_characters_other_than_line_breaks_and_tabs_are_unreadable(
    value: str, expected: str | None
) -> None:
    """NUL, other C0 controls and lone surrogates are refused; line breaks, tabs and
    bidirectional marks (shown isolated) are text."""
    assert expected == unreadable_character(value)


def test_sign_in_with_a_nul_is_a_wrong_username_and_counts_no_failure(client: TestClient) -> None:
    """``ann\\0`` is answered like any wrong username (401) without reaching the desk, so
    five such attempts do not use up the address's sign-in limit."""
    token = csrf_of(client.get("/ui/sign-in").text)
    answers = [
        client.post(
            "/ui/sign-in", data={"username": "ann\x00", "password": PASSWORD, "csrf": token}
        )
        for _ in range(5)
    ]
    assert [401] * 5 == [answer.status_code for answer in answers]
    assert "wrong username or password" in answers[-1].text
    sign_in(client, "ann")


def test_an_escalation_note_with_a_nul_is_refused_with_422(client: TestClient, parts: Desk) -> None:
    """The note is refused with the reason and the case stays open."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post(
        "/ui/cases/tx-0001/verdict",
        data={"csrf": token, "verdict": "escalate", "note": "look\x00 here"},
    )
    assert 422 == response.status_code
    assert "note: contains a control character (U+0000)" in response.text
    assert CaseStatus.OPEN == parts.desk.cases.get("tx-0001").status


@pytest.mark.parametrize(
    "path",
    ["/ui/cases/tx%00", "/ui/audit?actor=a%00", "/ui/audit?subject=%00"],
)
def test_a_nul_in_the_address_is_refused_with_422(client: TestClient, path: str) -> None:
    """A NUL in a path segment or a query value is a 422, whatever the page."""
    sign_in(client, "lea")
    assert 422 == client.get(path).status_code


def test_the_check_holds_whatever_the_case_of_the_form_type(
    client: TestClient, parts: Desk
) -> None:
    """``Application/X-WWW-Form-Urlencoded`` is the same form type (the parser lower-cases
    it), so a NUL sent under it is refused too."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    token = csrf_of(client.get("/ui/cases/tx-0001").text)
    response = client.post(
        "/ui/cases/tx-0001/verdict",
        content=f"csrf={token}&verdict=escalate&note=look%00here".encode(),
        headers={"content-type": "Application/X-WWW-Form-Urlencoded", "X-CSRF-Token": token},
    )
    assert 422 == response.status_code
    assert CaseStatus.OPEN == parts.desk.cases.get("tx-0001").status
