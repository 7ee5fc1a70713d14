"""Text from the browser, checked once at the UI's edge before any page or store sees it.

Every request's path segments, query values and form fields pass :func:`check_request_text`
(the page route calls it), which refuses control characters: NUL, which PostgreSQL cannot
store in a text column (so it would be a 503 there, and a raw NUL in the audit export on
SQLite), the other C0 controls and DEL, which no person types, and lone surrogates, which
no encoding can store. Tabs and line breaks are text. Right-to-left marks are text too:
the templates show user text isolated (``|bdi``) so it cannot reorder the page around it.
"""

from __future__ import annotations

from fastapi import Request

from fraudops.errors import InputError

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TEXT_CONTROLS = frozenset("\t\n\r")


class UnreadableTextError(InputError):
    """A request carries a character the UI does not take; names the field (422)."""


def unreadable_character(value: str) -> str | None:
    """The first character of ``value`` the UI refuses; None if it has none."""
    for char in value:
        code = ord(char)
        if code < 0x20 and char not in _TEXT_CONTROLS:
            return char
        if code == 0x7F or 0xD800 <= code <= 0xDFFF:
            return char
    return None


async def check_request_text(request: Request) -> None:
    """UnreadableTextError naming the first path segment, query value or form field of
    ``request`` with a character :func:`unreadable_character` refuses."""
    fields: list[tuple[str, object]] = [
        *request.path_params.items(),
        *request.query_params.multi_items(),
    ]
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _FORM_TYPES:
        fields += (await request.form()).multi_items()
    for name, value in fields:
        if not isinstance(value, str):
            continue  # an uploaded file is not text
        char = unreadable_character(value)
        if char is not None:
            raise UnreadableTextError(
                f"{name}: contains a control character (U+{ord(char):04X}), which cannot be"
                " stored; remove it and send again"
            )
