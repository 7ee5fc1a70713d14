"""Every error fraudops raises on purpose, in one tree.

    FraudopsError                 base; carries the HTTP status an API maps it to
    ├── ConfigError               settings or a config file are invalid (500)
    ├── InputError                the caller gave something unusable (422)
    │   ├── SourceError           a whole source (file) cannot be read; names file and line
    │   ├── MappingError          a column mapping is unknown or malformed
    │   ├── FieldError            one field's value cannot be used (a time ahead of the clock)
    │   ├── ConflictingDuplicateError  an id decided before, sent with other content (409)
    │   └── AliasMovedError       a model alias no longer points where the mover saw it (409)
    ├── LakeError                 the data lake is missing or inconsistent (500)
    ├── NotEnoughDataError        a window holds too little data to train or evaluate (422)
    ├── ModelError                a model cannot be loaded or used (503)
    │   ├── ModelNotFoundError    no model at the given location (404)
    │   └── InvalidScoreError     a model answered NaN, out of range or stuck on a constant
    ├── StoreError                an external store (Redis, a database) failed (503)
    ├── AuthError                 a request carries no valid API key or sign-in (401)
    ├── PermissionDeniedError     signed in, but the role may not do this (403)
    ├── SignInLimitedError        too many sign-in attempts; retry after a while (429)
    ├── CaseNotFoundError         no review case for that transaction id (404)
    ├── CaseClosedError           the case is closed with another verdict (409)
    ├── LockedError               another analyst holds the case's lock; says who (409)
    └── ResilienceError           a protective limit tripped; the caller falls back (503)
        ├── StageTimeoutError     a stage outran its timeout or the decision's deadline
        ├── CircuitOpenError      a circuit breaker is open, so the call was not made
        └── OverloadedError       in-flight work is at its bound, so the request was shed

Every error has a short ``reason`` code (``timeout``, ``breaker_open``, ``invalid_score``…)
that fallbacks, metrics and logs record, so a degraded decision says why in one word.

A record that fails validation is not an error: it is an outcome, counted and kept in the
dead-letter store with its reason.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class FraudopsError(Exception):
    """Base of every deliberate fraudops error."""

    http_status: int = 500
    reason: str = "error"

    @property
    def problems(self) -> list[tuple[str, str]]:
        """The fields at fault, each with what is wrong with it (an API error lists them)."""
        return []


class ConfigError(FraudopsError):
    """Settings, or a config file, are invalid."""


class InputError(FraudopsError):
    """The caller gave something that cannot be used."""

    http_status = 422


class SourceError(InputError):
    """A whole source cannot be read: truncated, wrong encoding, missing columns.

    Names the file and, where known, the line so a person can go and look.
    """

    def __init__(self, path: Path | str, reason: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class MappingError(InputError):
    """A column mapping is unknown or malformed."""


class FieldError(InputError):
    """One field of a record has a value that cannot be used, though well-formed."""

    reason = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    @property
    def problems(self) -> list[tuple[str, str]]:
        return [(self.field, self.message)]


class ConflictingDuplicateError(InputError):
    """A transaction id already decided, sent again with other content: the first decision
    stands for the first payment, and this one needs an id of its own."""

    http_status = 409
    reason = "conflicting_duplicate"

    def __init__(self, transaction_id: str, fields: list[str]) -> None:
        self.transaction_id = transaction_id
        self.fields = fields
        super().__init__(
            f"transaction {transaction_id!r} was decided before with another"
            f" {', '.join(fields)}: that decision stands; a new payment needs a new id"
        )

    @property
    def problems(self) -> list[tuple[str, str]]:
        message = "differs from the transaction first decided under this id"
        return [(name, message) for name in self.fields]


class AliasMovedError(InputError):
    """An alias no longer points where the caller saw it point, so the move they decided on
    is refused and nothing moves: they decide again on what is there now."""

    http_status = 409
    reason = "alias_moved"


class LakeError(FraudopsError):
    """The data lake is missing or inconsistent."""


class NotEnoughDataError(FraudopsError):
    """A train or test window holds too little data (or no fraud) to work with."""

    http_status = 422


class ModelError(FraudopsError):
    """A model cannot be loaded or used."""

    http_status = 503
    reason = "model_error"


class ModelNotFoundError(ModelError):
    """No model at the given location."""

    http_status = 404
    reason = "model_not_found"


class InvalidScoreError(ModelError):
    """A model answered something that is not a usable probability.

    NaN, infinite or out-of-range scores, or the same score for a long run of different
    transactions (a model stuck on a constant fails silently unless someone checks).
    """

    reason = "invalid_score"


class StoreError(FraudopsError):
    """An external store (Redis, a database) is unreachable or failed."""

    http_status = 503
    reason = "store_error"


class AuthError(FraudopsError):
    """A request carries no valid API key; the response says nothing more."""

    http_status = 401
    reason = "unauthorized"


class PermissionDeniedError(FraudopsError):
    """A signed-in user's role does not allow the action; names the role and the action."""

    http_status = 403
    reason = "forbidden"


class SignInLimitedError(FraudopsError):
    """Too many sign-in attempts for a username or from an address; try again later."""

    http_status = 429
    reason = "rate_limited"

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many sign-in attempts; try again in {retry_after_s:.0f} s")


class CaseNotFoundError(FraudopsError):
    """No review case exists for the transaction id given."""

    http_status = 404
    reason = "case_not_found"

    def __init__(self, transaction_id: str) -> None:
        self.transaction_id = transaction_id
        super().__init__(f"no review case for transaction {transaction_id!r}")


class CaseClosedError(FraudopsError):
    """The case is already closed (or escalated) with another verdict, so this one is refused."""

    http_status = 409
    reason = "case_closed"


class LockedError(FraudopsError):
    """Another analyst holds the case's lock; says who and until when."""

    http_status = 409
    reason = "locked"

    def __init__(self, transaction_id: str, holder: str, until: datetime) -> None:
        self.transaction_id = transaction_id
        self.holder = holder
        self.until = until
        super().__init__(
            f"case {transaction_id!r} is locked by {holder!r} until {until.isoformat()}"
        )


class ResilienceError(FraudopsError):
    """A protective limit tripped: the caller should fall back, not fail."""

    http_status = 503
    reason = "resilience"


class StageTimeoutError(ResilienceError):
    """A stage outran its own timeout or the decision's deadline."""

    reason = "timeout"

    def __init__(self, stage: str, timeout_s: float) -> None:
        self.stage = stage
        self.timeout_s = timeout_s
        super().__init__(f"{stage} took longer than {timeout_s * 1000:.1f} ms")


class CircuitOpenError(ResilienceError):
    """A circuit breaker is open, so the protected call was not made."""

    reason = "breaker_open"

    def __init__(self, breaker: str) -> None:
        self.breaker = breaker
        super().__init__(f"circuit breaker {breaker!r} is open")


class OverloadedError(ResilienceError):
    """In-flight work is at its bound, so this request was shed."""

    reason = "shed"


def validation_problems(exc: ValidationError) -> str:
    """A pydantic validation error as one line a person can act on: ``where: what; …``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
        for error in exc.errors()
    )
