"""Who is asking: the signed-in user behind a request, or a request to sign in.

:func:`signed_in` is a dependency of every page router except sign-in and the static
files, so no page can be reached without a session; what the user may do there is then
checked by the desk: each of its methods authorises, and ``desk.authorise`` guards
pages that call no desk method.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.parts import ui_of
from fraudops.api.ui.session import Session
from fraudops.errors import AuthError
from fraudops.review import User


class SignInRequiredError(Exception):
    """The request has no valid session: HTML gets a redirect to sign-in, htmx and JSON 401."""


def session_of(request: Request) -> Session:
    """The session the UI route loaded for ``request`` (a fresh anonymous one if none)."""
    session: Session = request.state.ui_session
    return session


def set_session(request: Request, session: Session) -> None:
    """Replace the request's session; the UI route writes the cookie if it changed."""
    request.state.ui_session = session


async def signed_in(request: Request) -> User:
    """The active user the session names; SignInRequiredError if none (or disabled meanwhile)."""
    cached: User | None = getattr(request.state, "ui_user", None)
    if cached is not None:
        return cached
    session = session_of(request)
    if session.username is None:
        raise SignInRequiredError("sign in to continue")
    ui = ui_of(request)
    try:
        user = await run_in_threadpool(ui.desk.current_user, session.username)
    except AuthError as exc:
        set_session(request, ui.sessions.new())
        raise SignInRequiredError(str(exc)) from exc
    request.state.ui_user = user
    return user
