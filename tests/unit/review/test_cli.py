"""``fraudops users add`` and ``fraudops users list`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.cli._users import RoleName
from fraudops.review.database import ReviewDatabase
from fraudops.review.users import Role, SqlUserStore
from tests.unit.review.conftest import PASSWORD, T0

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A review database URL in a fresh folder."""
    return f"sqlite:///{tmp_path}/review.db"


def users(url: str, *args: str, input: str | None = None) -> tuple[int, str]:
    """Run ``fraudops users`` on ``url``; the exit code and what it printed."""
    result = runner.invoke(app, ["users", *args, "--review-url", url], input=input)
    return result.exit_code, result.output


def test_the_first_admin_is_added_from_stdin_and_can_sign_in(url: str) -> None:
    """users add --password-stdin creates the admin; the password then verifies."""
    code, output = users(
        url,
        "add",
        "--username",
        "root",
        "--role",
        "admin",
        "--password-stdin",
        "--json",
        input=PASSWORD + "\n",
    )
    assert 0 == code, output
    assert ("root", "admin") == (json.loads(output)["username"], json.loads(output)["role"])
    store = SqlUserStore(ReviewDatabase(url))
    user = store.verify("root", PASSWORD, T0)
    store.close()
    assert (Role.ADMIN, True) == ((user.role, user.created_by.startswith("cli:")) if user else None)


def test_add_asks_for_the_password_twice(url: str) -> None:
    """Without --password-stdin the password is prompted for and confirmed."""
    code, output = users(
        url, "add", "--username", "ann", "--role", "analyst", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert 0 == code, output
    code, output = users(url, "list", "--json")
    assert [("ann", "analyst", True)] == [
        (u["username"], u["role"], u["active"]) for u in json.loads(output)["users"]
    ]


def test_bad_input_fails_with_a_message_and_adds_no_one(url: str) -> None:
    """A short password or a taken name exits 2 saying why; an unknown role is a usage error."""
    users(url, "add", "--username", "ann", "--role", "lead", "--password-stdin", input=PASSWORD)
    short = users(
        url, "add", "--username", "bob", "--role", "lead", "--password-stdin", input="short\n"
    )
    taken = users(
        url, "add", "--username", "ann", "--role", "lead", "--password-stdin", input=PASSWORD
    )
    role = users(
        url, "add", "--username", "cy", "--role", "boss", "--password-stdin", input=PASSWORD
    )
    assert (2, 2, 2) == (short[0], taken[0], role[0])
    assert "at least 12" in short[1]
    assert "exists already" in taken[1]
    assert ["ann"] == [u["username"] for u in json.loads(users(url, "list", "--json")[1])["users"]]


def test_the_cli_roles_are_the_review_roles() -> None:
    """The command's role choices are exactly fraudops.review's roles."""
    assert [role.value for role in Role] == [role.value for role in RoleName]
