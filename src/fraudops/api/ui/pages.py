"""How the review UI answers: templates, the page route, and errors as pages.

:class:`UiRoute` wraps every page handler. Before it: the session is read from its
cookie, on anything but GET/HEAD the CSRF token (``X-CSRF-Token`` header from htmx, or
the form's ``csrf`` field) must match the session's, and the request's text is checked
(:mod:`~fraudops.api.ui.text`: no control characters). After it: the cookie is written
if the session changed, and security headers are set. Errors become answers of their
HTTP status in the shape the caller reads: a page for a browser, a message swapped into
the page's flash area for htmx, a JSON problem for a JSON client. A request without a
session is sent to sign in (HTML) or answered 401 (htmx, JSON).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from fraudops.api.responses import field_problems, problem
from fraudops.api.ui.access import SignInRequiredError, session_of, set_session
from fraudops.api.ui.parts import ui_of
from fraudops.api.ui.session import COOKIE, CSRF_FIELD, CSRF_HEADER
from fraudops.api.ui.text import UnreadableTextError, check_request_text
from fraudops.errors import AuthError, FraudopsError, PermissionDeniedError
from fraudops.review import Permission, User, allowed

log = structlog.get_logger("fraudops.review_ui")

TEMPLATES = Path(__file__).parent / "templates"
SIGN_IN_PATH = "/ui/sign-in"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

SECURITY_HEADERS: Mapping[str, str] = {
    # Scripts and styles only from this origin: htmx and ui.js are served from /ui/static,
    # and the SVG charts use attributes, not inline styles.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_TITLES = {
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    409: "Someone got there first",
    422: "Please check what you entered",
    429: "Too many attempts",
    503: "A store is unavailable",
}

NAV: tuple[tuple[str, str, Permission], ...] = (
    ("Queue", "ui.queue", Permission.WORK_CASES),
    ("Dashboard", "ui.dashboard", Permission.WORK_CASES),
    ("Audit", "ui.audit", Permission.VIEW_AUDIT),
    ("Models", "ui.models", Permission.APPROVE_PROMOTION),
    ("Users", "ui.users", Permission.MANAGE_USERS),
)


@functools.cache
def environment() -> Environment:
    """The Jinja2 environment of the UI's templates (autoescaped, strict about names)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.filters["money"] = money
    env.filters["percent"] = percent
    env.filters["number"] = number
    env.filters["bdi"] = bdi
    return env


def when(value: datetime | None) -> str:
    """A time as ``2024-03-01 09:00:03 UTC``; an em dash for none."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(value: timedelta) -> str:
    """A length of time the way people say it, its two largest parts with no zero one:
    ``3 d 4 h``, ``1 d``, ``2 h 5 min``, ``1 h``, ``45 s``."""
    seconds = int(abs(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def money(value: float) -> str:
    """An amount with two decimals and thousands separated: ``1,234.50``."""
    return f"{value:,.2f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage, or an em dash when there is nothing to divide."""
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def number(value: float | int | None) -> str:
    """A figure for people: whole numbers without decimals and with thousands separated
    (``9,458``), others to four significant digits (``0.5679``); an em dash for none."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def bdi(value: object) -> Markup:
    """User text isolated from the text around it (``<bdi>``), so a right-to-left
    override in a note or a name cannot reorder the rest of the line."""
    return Markup("<bdi>{}</bdi>").format(value)


def path_for(request: Request, route: str, /, **params: str) -> str:
    """The URL path of the UI route named ``route`` (never an absolute URL: proxies differ)."""
    return str(request.app.url_path_for(route, **params))


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with what every page needs: the user, CSRF token, navigation,
    the flash message (taken from the session), the time, and ``path()`` for links."""
    session = session_of(request)
    user: User | None = getattr(request.state, "ui_user", None)
    flash = (session.flash, session.flash_kind) if session.flash else None
    if flash is not None and not template.startswith("_"):
        set_session(request, session.without_flash())
    else:
        flash = None
    ui = ui_of(request)
    values: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf": session.csrf,
        "csrf_header": Markup(f'{{"{CSRF_HEADER}": "{session.csrf}"}}'),
        "nav": _nav(request, user),
        "flash": flash,
        "now": ui.desk.clock.now(),
        "path": functools.partial(path_for, request),
        "can": functools.partial(allowed, user) if user is not None else lambda _: False,
        "Permission": Permission,
    }
    values.update(context or {})
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def redirect(
    request: Request,
    name: str,
    flash: str | None = None,
    *,
    flash_kind: str = "info",
    **params: str,
) -> Response:
    """A 303 to the UI route ``name`` (htmx follows ``HX-Redirect``), carrying ``flash``."""
    if flash is not None:
        set_session(request, session_of(request).with_flash(flash, flash_kind))
    return redirect_to(request, path_for(request, name, **params))


def redirect_to(request: Request, target: str) -> Response:
    """A 303 to ``target`` for a browser; a 200 with ``HX-Redirect`` for htmx."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (it wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON rather than HTML."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _nav(request: Request, user: User | None) -> list[tuple[str, str, bool]]:
    if user is None:
        return []
    here = request.url.path
    items = []
    for label, name, permission in NAV:
        if allowed(user, permission):
            target = path_for(request, name)
            items.append((label, target, here == target or here.startswith(target + "/")))
    return items


class StaleFormError(PermissionDeniedError):
    """A form's CSRF token is missing or is not this session's (403 unless the route says
    otherwise)."""


class UiRoute(APIRoute):
    """A page route: session in, CSRF and text checked, errors as pages, cookie and
    headers out.

    A route class may answer a stale form or unreadable text its own way by overriding
    :meth:`stale_form` or :meth:`unreadable_text` (sign-in does).
    """

    def stale_form(self, request: Request, error: StaleFormError) -> Response:
        """The answer to a form whose CSRF token does not match: 403 and the reason."""
        return error_answer(request, error.http_status, str(error))

    def unreadable_text(self, request: Request, error: UnreadableTextError) -> Response:
        """The answer to a request with a control character in its text: 422, the field."""
        return error_answer(request, error.http_status, str(error))

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            ui = ui_of(request)
            loaded = ui.sessions.loads(request.cookies.get(COOKIE))
            set_session(request, loaded or ui.sessions.new())
            try:
                if request.method not in _SAFE_METHODS:
                    await _check_csrf(request)
                await check_request_text(request)
                response = await handler(request)
            except StaleFormError as exc:
                response = self.stale_form(request, exc)
            except UnreadableTextError as exc:
                response = self.unreadable_text(request, exc)
            except (SignInRequiredError, AuthError) as exc:
                response = _sign_in_required(request, str(exc))
            except FraudopsError as exc:
                response = error_answer(request, exc.http_status, str(exc))
            except RequestValidationError as exc:
                problems = field_problems(exc.errors())
                message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
                response = error_answer(request, 422, message)
            session = session_of(request)
            if session != loaded:
                response.set_cookie(
                    value=ui.sessions.dumps(session), **ui.sessions.cookie_options()
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page


async def _check_csrf(request: Request) -> None:
    token = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if token is None and content_type.startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not session_of(request).csrf_matches(token):
        log.warning("review_ui.csrf_rejected", path=request.url.path, had_token=token is not None)
        raise StaleFormError(
            "this form's security token is missing or out of date (the session may have"
            " ended): reload the page and try again"
        )


def _sign_in_required(request: Request, message: str) -> Response:
    if wants_json(request):
        response: Response = problem(401, message)
    elif is_htmx(request):
        response = Response(message, status_code=401, headers={"HX-Redirect": SIGN_IN_PATH})
    else:
        here = request.url.path
        target = SIGN_IN_PATH if request.method != "GET" else f"{SIGN_IN_PATH}?next={quote(here)}"
        response = RedirectResponse(target, status_code=303)
    return response


def error_answer(request: Request, status: int, message: str) -> Response:
    """An error of ``status`` as a page, an htmx flash fragment, or a JSON problem."""
    user = getattr(request.state, "ui_user", None)
    username = None if user is None else user.username
    if status >= 500:
        log.error(
            "review_ui.error", path=request.url.path, status=status, user=username, error=message
        )
    else:
        log.info(
            "review_ui.refused", path=request.url.path, status=status, user=username, error=message
        )
    if wants_json(request):
        return problem(status, message)
    if is_htmx(request):
        return render(
            request,
            "_flash.html",
            {"flash": (message, "error")},
            status_code=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    title = _TITLES.get(status, "Something went wrong")
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)
