"""Signing in and out of the review UI.

Sign-in goes through the desk, whose limiter refuses a username or an address after too
many failures (429, with how long to wait). The address is the connection's peer: behind
a proxy, run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so it is the
analyst's, not the proxy's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.access import session_of, set_session
from fraudops.api.ui.pages import StaleFormError, UiRoute, log, redirect, redirect_to, render
from fraudops.api.ui.parts import ui_of
from fraudops.api.ui.text import UnreadableTextError
from fraudops.errors import AuthError, SignInLimitedError
from fraudops.review.users import MAX_PASSWORD_LENGTH


class _SignInRoute(UiRoute):
    """Sign-in and sign-out answer a stale form by going where the visitor meant to (a
    second tab's sign-in form, a sign-out form from before the last sign-out), and a
    username or password with a control character as a wrong one, without asking the desk
    (nothing is stored, and no failure counts against the address)."""

    def stale_form(self, request: Request, error: StaleFormError) -> Response:
        username = session_of(request).username
        if self.name == "ui.sign_out":
            if username is None:
                return redirect(request, "ui.sign_in", flash="You are signed out.")
            message = "That sign-out form was out of date: press Sign out again to sign out."
            return redirect(request, "ui.queue", flash=message)
        if username is not None:
            return redirect(request, "ui.queue", flash=f"You are already signed in as {username}.")
        message = "The sign-in form had expired: please sign in again."
        return redirect(request, "ui.sign_in", flash=message, flash_kind="warning")

    def unreadable_text(self, request: Request, error: UnreadableTextError) -> Response:
        if self.name != "ui.sign_in_submit":
            return super().unreadable_text(request, error)
        context = {"next": _HOME, "username": "", "error": "wrong username or password."}
        return render(request, "sign_in.html", context, status_code=401)


router = APIRouter(route_class=_SignInRoute)

_HOME = "/ui/queue"


def _local_target(target: str | None) -> str:
    """``target`` if it is a page of this UI; the queue otherwise (no open redirects)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return _HOME


@router.get("/sign-in", name="ui.sign_in")
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a signed-in visitor goes straight on)."""
    if session_of(request).username is not None:
        return redirect_to(request, _local_target(next))
    return render(request, "sign_in.html", {"next": _local_target(next), "username": ""})


@router.post("/sign-in", name="ui.sign_in_submit")
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH + 1)],
    next: Annotated[str, Form(max_length=500)] = _HOME,
) -> Response:
    """Check the password; on success start a new session (new CSRF token) and go on."""
    ui = ui_of(request)
    client = request.client.host if request.client is not None else "unknown"
    name = username.strip().lower()
    context = {"next": _local_target(next), "username": name}
    try:
        user = await run_in_threadpool(ui.desk.sign_in, name, password, client)
    except SignInLimitedError as exc:
        context["error"] = f"{exc}. Failed attempts are limited to slow down password guessing."
        headers = {"Retry-After": str(int(exc.retry_after_s))}
        return render(request, "sign_in.html", context, status_code=429, headers=headers)
    except AuthError as exc:
        context["error"] = f"{exc}."
        return render(request, "sign_in.html", context, status_code=401)
    set_session(request, ui.sessions.new(user.username))
    log.info("review_ui.signed_in", user=user.username, role=user.role.value)
    return redirect_to(request, _local_target(next))


@router.post("/sign-out", name="ui.sign_out")
async def sign_out(request: Request) -> Response:
    """End the session in this browser."""
    session = session_of(request)
    log.info("review_ui.signed_out", user=session.username)
    set_session(request, ui_of(request).sessions.new())
    return redirect(request, "ui.sign_in", flash="You are signed out.")
