"""The review UI's session: a signed cookie saying who is signed in, with the CSRF token.

The cookie is signed, not encrypted (itsdangerous, keyed by the review session secret): it
holds a username, a random CSRF token, when it expires and at most one flash message,
none of them secret from the person holding it. Being stateless, any replica can read it;
the user behind it is read afresh from the desk on every request, so a disabled account
stops at once. A visitor who is not signed in gets a session too (no username), so the
sign-in form carries a CSRF token as well. Signing in starts a new session with a new
token, so a token seen before sign-in is worthless after it.

Limits, said plainly: signing out clears the browser's cookie but cannot revoke a copy of
it, which stays valid until it expires (``max_age_s`` after sign-in).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from fraudops.errors import ConfigError

COOKIE = "fraudops_review"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
_SALT = "fraudops.review-ui.session"
MAX_FLASH = 1000
"""A flash message is cut to this length: it travels in the (size-limited) cookie."""


@dataclass(frozen=True, slots=True)
class Session:
    """What one browser's cookie says: who (None before sign-in), its CSRF token, until when."""

    csrf: str
    expires: float
    """Unix time after which the session is void, however recently it was re-signed."""
    username: str | None = None
    flash: str | None = None
    """A one-line message for the next page shown (then cleared)."""
    flash_kind: str = "info"

    def with_flash(self, message: str, kind: str = "info") -> Session:
        """This session carrying ``message`` to the next page."""
        return replace(self, flash=message[:MAX_FLASH], flash_kind=kind)

    def without_flash(self) -> Session:
        """This session with its flash message taken."""
        return replace(self, flash=None, flash_kind="info")

    def csrf_matches(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (compared in constant time)."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionCodec:
    """Makes, signs and reads sessions for one secret and lifetime."""

    def __init__(self, secret: str, *, max_age_s: int = 8 * 3600) -> None:
        if len(secret) < 16:
            raise ConfigError("review.session_secret needs at least 16 characters")
        self.max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def new(self, username: str | None = None) -> Session:
        """A fresh session with a new CSRF token, for ``username`` (None: not signed in)."""
        return Session(
            csrf=secrets.token_urlsafe(32),
            expires=time.time() + self.max_age_s,
            username=username,
        )

    def dumps(self, session: Session) -> str:
        """The cookie value of ``session``."""
        payload: dict[str, Any] = {"c": session.csrf, "x": session.expires}
        if session.username is not None:
            payload["u"] = session.username
        if session.flash is not None:
            payload["f"] = [session.flash, session.flash_kind]
        return self._serializer.dumps(payload)

    def loads(self, value: str | None) -> Session | None:
        """The session a cookie holds; None if it is missing, forged, malformed or expired."""
        if not value:
            return None
        try:
            payload = self._serializer.loads(value, max_age=self.max_age_s)
        except BadSignature:
            return None
        if not isinstance(payload, dict):
            return None
        csrf, expires = payload.get("c"), payload.get("x")
        username, flash = payload.get("u"), payload.get("f")
        if not isinstance(csrf, str) or not isinstance(expires, int | float):
            return None
        if expires <= time.time() or not (username is None or isinstance(username, str)):
            return None
        session = Session(csrf=csrf, expires=float(expires), username=username)
        if isinstance(flash, list) and len(flash) == 2 and all(isinstance(f, str) for f in flash):
            session = session.with_flash(flash[0], flash[1])
        return session

    def cookie_options(self) -> dict[str, Any]:
        """How the cookie is set: HttpOnly, Secure, SameSite=Lax, only under ``/ui``."""
        return {
            "key": COOKIE,
            "max_age": self.max_age_s,
            "path": "/ui",
            "secure": True,
            "httponly": True,
            "samesite": "lax",
        }
