"""How the API answers: fast JSON bodies and problems that name the bad field.

Validation errors never echo the input back: a client that sent a card number in the
wrong field must not see it in a response, a log line or a proxy's cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from fastapi.responses import Response

from fraudops.errors import FraudopsError


class JsonBytes(Response):
    """A JSON response rendered by orjson (several times faster than the standard one)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def field_name(location: Sequence[int | str]) -> str:
    """A pydantic error location as a field path, without FastAPI's ``body`` prefix."""
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "(body)"


def field_problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as ``{field, message}`` pairs, with the offending values left out."""
    return [
        {"field": field_name(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}
        for error in errors
    ]


def problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> JsonBytes:
    """An error response in the ``Problem`` shape."""
    return JsonBytes({"detail": detail, "errors": errors or []}, status_code=status)


def error_problems(error: FraudopsError) -> list[dict[str, str]]:
    """The fields ``error`` names, as ``{field, message}`` pairs."""
    return [{"field": name, "message": message} for name, message in error.problems]


def error_response(error: FraudopsError) -> JsonBytes:
    """A deliberate fraudops error as its HTTP status; a 401 says nothing else."""
    headers = {"WWW-Authenticate": "ApiKey"} if error.http_status == 401 else None
    response = problem(error.http_status, str(error), error_problems(error))
    if headers:
        response.headers.update(headers)
    return response
