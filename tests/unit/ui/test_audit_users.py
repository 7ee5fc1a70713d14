"""The audit page with its exports, and the admins' users page."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from fraudops.review import Role
from tests.unit.ui.conftest import Desk, csrf_of, make_record, sign_in


def _verdict(client: TestClient, transaction_id: str, verdict: str) -> None:
    token = csrf_of(client.get(f"/ui/cases/{transaction_id}").text)
    client.post(f"/ui/cases/{transaction_id}/verdict", data={"csrf": token, "verdict": verdict})


def test_audit_page_lists_a_verdict_with_who_and_what(client: TestClient, parts: Desk) -> None:
    """A lead's verdict appears on the audit page with the lead and the transaction."""
    parts.open(make_record(1))
    sign_in(client, "lea")
    _verdict(client, "tx-0001", "fraud")
    page = client.get("/ui/audit?action=verdict").text
    cells = ("<td>lea</td>", "<td>verdict</td>", "<td>tx-0001</td>")
    assert [True, True, True] == [cell in page for cell in cells]


def test_audit_filters_by_actor(client: TestClient, parts: Desk) -> None:
    """Filtering on ada shows her user changes and not the CLI's."""
    parts.desk.add_user(
        parts.desk.current_user("ada"), "cat", Role.ANALYST, "another long password"
    )
    sign_in(client, "lea")
    page = client.get("/ui/audit?actor=ada").text
    assert (True, False) == ("<td>cat</td>" in page, "<td>cli:test</td>" in page)


def test_audit_export_as_csv_and_json_lines(client: TestClient, parts: Desk) -> None:
    """The exports download the trail: CSV with a header, JSON lines one entry a line."""
    sign_in(client, "lea")
    as_csv = client.get("/ui/audit/export?format=csv")
    as_jsonl = client.get("/ui/audit/export?format=jsonl")
    entries = [orjson.loads(line) for line in as_jsonl.text.splitlines()]
    assert [True, True, "text/csv; charset=utf-8", 4] == [
        as_csv.text.startswith("id,at,actor,action,subject,reason,details"),
        "attachment;" in as_csv.headers["content-disposition"],
        as_csv.headers["content-type"],
        len(entries),
    ]
    assert {"ann", "bob", "lea", "ada"} == {entry["subject"] for entry in entries}


def test_admin_adds_a_user_who_can_then_sign_in(client: TestClient, parts: Desk) -> None:
    """A user added on the users page can sign in, and the addition is audited under ada."""
    token = sign_in(client, "ada")
    response = client.post(
        "/ui/users",
        data={"csrf": token, "username": "cat", "role": "analyst", "password": "a long passphrase"},
    )
    added = parts.desk.audit_entries(parts.desk.current_user("ada"), subject="cat")
    assert "/ui/users" == response.headers["location"]
    assert [("ada", "added")] == [(entry.actor, entry.reason) for entry in added]
    client.post("/ui/sign-out", data={"csrf": token})
    sign_in(client, "cat", "a long passphrase")


def test_a_short_password_is_refused_with_the_reason(client: TestClient, parts: Desk) -> None:
    """Adding a user with a short password shows why, with 422, and adds no one."""
    token = sign_in(client, "ada")
    response = client.post(
        "/ui/users", data={"csrf": token, "username": "cat", "role": "analyst", "password": "short"}
    )
    assert 422 == response.status_code
    assert "at least 12 characters" in response.text
    assert parts.desk.users.get("cat") is None


def test_admin_disables_and_changes_the_role_of_a_user(client: TestClient, parts: Desk) -> None:
    """Disable bob and make ann a lead from the users page."""
    token = sign_in(client, "ada")
    client.post("/ui/users/bob/active", data={"csrf": token, "active": "false"})
    client.post("/ui/users/ann/role", data={"csrf": token, "role": "lead"})
    admin, ann = parts.desk.current_user("ada"), parts.desk.current_user("ann")
    assert [False, Role.LEAD] == [
        next(u.active for u in parts.desk.users_list(admin) if u.username == "bob"),
        ann.role,
    ]


def test_an_admin_cannot_disable_themselves(client: TestClient, parts: Desk) -> None:
    """Disabling oneself is refused with 422 and the reason."""
    token = sign_in(client, "ada")
    response = client.post("/ui/users/ada/active", data={"csrf": token, "active": "false"})
    assert 422 == response.status_code
    assert "ask another admin" in response.text
