"""The users page (admins): who can sign in, with which role; add, change role, disable.

Every change goes through the desk, which audits it with the admin's name. Passwords are
set here only for new users; people change their own with ``fraudops users``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, redirect, render
from fraudops.api.ui.parts import ui_of
from fraudops.errors import InputError
from fraudops.review import Role, User
from fraudops.review.users import MAX_PASSWORD_LENGTH

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])


async def _users_page(
    request: Request, user: User, *, error: str | None = None, status_code: int = 200
) -> Response:
    ui = ui_of(request)
    people = await run_in_threadpool(ui.desk.users_list, user)
    return render(
        request,
        "users.html",
        {"people": people, "roles": list(Role), "error": error},
        status_code=status_code,
    )


@router.get("/users", name="ui.users")
async def users_page(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
    """Every user, with their role and whether they can sign in."""
    return await _users_page(request, user)


@router.post("/users", name="ui.add_user")
async def add_user(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    username: Annotated[str, Form(max_length=200)],
    role: Annotated[Role, Form()],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH + 1)],
) -> Response:
    """Create a user (audited)."""
    ui = ui_of(request)
    name = username.strip()
    try:
        await run_in_threadpool(ui.desk.add_user, user, name, role, password)
    except InputError as exc:
        return await _users_page(request, user, error=str(exc), status_code=422)
    return redirect(request, "ui.users", flash=f"User {name} added as {role.value}.")


@router.post("/users/{username}/role", name="ui.set_role")
async def set_role(
    request: Request,
    username: str,
    user: Annotated[User, Depends(signed_in)],
    role: Annotated[Role, Form()],
) -> Response:
    """Change a user's role (audited; not one's own)."""
    ui = ui_of(request)
    await run_in_threadpool(ui.desk.set_role, user, username, role)
    return redirect(request, "ui.users", flash=f"{username} is now {role.value}.")


@router.post("/users/{username}/active", name="ui.set_active")
async def set_active(
    request: Request,
    username: str,
    user: Annotated[User, Depends(signed_in)],
    active: Annotated[bool, Form()],
) -> Response:
    """Enable or disable a user (audited; not oneself)."""
    ui = ui_of(request)
    await run_in_threadpool(ui.desk.set_active, user, username, active)
    state = "can sign in again" if active else "is disabled"
    return redirect(request, "ui.users", flash=f"{username} {state}.")
