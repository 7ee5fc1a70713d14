"""``fraudops users``: create review-desk users (the first admin among them) and list them."""

from __future__ import annotations

import getpass
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fraudops.cli._common import console, emit_json, fail_cleanly
from fraudops.errors import InputError

if TYPE_CHECKING:
    from fraudops.review.users import SqlUserStore

users = typer.Typer(
    help="Users of the review desk: analysts, leads and admins.", no_args_is_help=True
)


class RoleName(StrEnum):
    """The roles of ``fraudops.review.users.Role``, here so ``--help`` stays fast."""

    analyst = "analyst"
    lead = "lead"
    admin = "admin"


ReviewUrl = Annotated[
    str | None,
    typer.Option(
        "--review-url", help="Review database URL (default review.url, else <data_dir>/review.db)."
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _store(url: str | None) -> SqlUserStore:
    from fraudops.review.database import ReviewDatabase
    from fraudops.review.users import SqlUserStore
    from fraudops.settings import load_settings

    if url is None:
        settings = load_settings()
        url = settings.review.database_url(settings.data_dir)
    return SqlUserStore(ReviewDatabase(url))


def _actor() -> str:
    # Who ran the command, as the audit trail records it: there is no signed-in user here.
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin: no password on standard input")
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@users.command("add")
@fail_cleanly
def add(
    username: Annotated[str, typer.Option(help="Sign-in name (lowercase).")],
    role: Annotated[RoleName, typer.Option(help="What the user may do.")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input."),
    ] = False,
    review_url: ReviewUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Add a user; asks for the password twice unless --password-stdin."""
    from fraudops.clock import SystemClock
    from fraudops.review.users import Role, check_password, check_username

    check_username(username)
    password = check_password(_read_password(password_stdin))
    store = _store(review_url)
    try:
        user = store.add(username, Role(role.value), password, by=_actor(), now=SystemClock().now())
    finally:
        store.close()
    if json_output:
        emit_json(
            {"username": user.username, "role": user.role.value, "created_by": user.created_by}
        )
        return
    console.print(f"added [bold]{user.username}[/bold] ({user.role.value})")


@users.command("list")
@fail_cleanly
def list_users(review_url: ReviewUrl = None, json_output: JsonOutput = False) -> None:
    """List every user with their role and whether they can sign in."""
    store = _store(review_url)
    try:
        everyone = store.list()
    finally:
        store.close()
    if json_output:
        emit_json(
            {
                "users": [
                    {
                        "username": user.username,
                        "role": user.role.value,
                        "active": user.active,
                        "created_at": user.created_at,
                        "created_by": user.created_by,
                    }
                    for user in everyone
                ]
            }
        )
        return
    table = Table(title=f"review users ({len(everyone)})")
    for column in ("username", "role", "active", "created", "by"):
        table.add_column(column)
    for user in everyone:
        table.add_row(
            user.username,
            user.role.value,
            "yes" if user.active else "no",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
            user.created_by,
        )
    console.print(table)
