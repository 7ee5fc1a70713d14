"""Every error fraudops raises on purpose, in one tree.

    FraudopsError                 base; carries the HTTP status an API maps it to
    ├── ConfigError               settings or a config file are invalid (500)
    ├── InputError                the caller gave something unusable (422)
    │   ├── SourceError           a whole source (file) cannot be read; names file and line
    │   └── MappingError          a column mapping is unknown or malformed
    ├── LakeError                 the data lake is missing or inconsistent (500)
    ├── NotEnoughDataError        a window holds too little data to train or evaluate (422)
    └── ModelError                a model cannot be loaded or used (503)
        └── ModelNotFoundError    no model at the given location (404)

A record that fails validation is not an error: it is an outcome, counted and kept in the
dead-letter store with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class FraudopsError(Exception):
    """Base of every deliberate fraudops error."""

    http_status: int = 500


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


class LakeError(FraudopsError):
    """The data lake is missing or inconsistent."""


class NotEnoughDataError(FraudopsError):
    """A train or test window holds too little data (or no fraud) to work with."""

    http_status = 422


class ModelError(FraudopsError):
    """A model cannot be loaded or used."""

    http_status = 503


class ModelNotFoundError(ModelError):
    """No model at the given location."""

    http_status = 404


def validation_problems(exc: ValidationError) -> str:
    """A pydantic validation error as one line a person can act on: ``where: what; …``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
        for error in exc.errors()
    )
