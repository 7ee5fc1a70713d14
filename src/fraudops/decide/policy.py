"""The policy: thresholds that turn a fraud probability into approve, review or decline.

Thresholds live here, outside the model, so risk teams move them without retraining and a
new model never silently changes how strict the system is. They come from settings, or from
a policy file that ``learn.thresholds.write_policy_file`` wrote from costs and review
capacity, with the reasons beside the numbers::

    format: 1
    review_threshold: 0.083
    decline_threshold: 0.91
    provenance:
      reason: least expected cost (…) with at most 100 reviews a day, on 28 days of …
      model_version: …            # any further keys are kept as written
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudops.decide.rules import _StrictLoader
from fraudops.errors import ConfigError, ModelError, validation_problems
from fraudops.settings import PolicySettings
from fraudops.types import Action

POLICY_FILE_FORMAT = 1
"""The version of the policy file's layout; a file of any other version is refused."""


class _Provenance(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    reason: str = Field(min_length=1)
    """Why these thresholds, in a sentence: a file nobody can explain is not a policy."""


class PolicyFile(BaseModel):
    """The layout of a policy file: two thresholds and where they came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = Field(ge=POLICY_FILE_FORMAT, le=POLICY_FILE_FORMAT)
    review_threshold: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    decline_threshold: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    provenance: _Provenance


@dataclass(frozen=True, slots=True)
class Policy:
    """Decline at or above ``decline_threshold``, review at or above ``review_threshold``."""

    review_threshold: float
    decline_threshold: float

    def __post_init__(self) -> None:
        for name, value in (
            ("review_threshold", self.review_threshold),
            ("decline_threshold", self.decline_threshold),
        ):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.review_threshold > self.decline_threshold:
            raise ConfigError(
                f"review_threshold {self.review_threshold} exceeds"
                f" decline_threshold {self.decline_threshold}"
            )

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> Policy:
        """The policy configured in ``settings.policy``: its file's when it names one."""
        if settings.file is not None:
            return cls.from_file(settings.file)
        return cls(settings.review_threshold, settings.decline_threshold)

    @classmethod
    def from_file(cls, path: Path) -> Policy:
        """The thresholds in the policy file at ``path``; ConfigError names file and field."""
        return cls.from_document(read_policy_file(path), origin=str(path))

    @classmethod
    def from_document(cls, document: PolicyFile, *, origin: str = "policy file") -> Policy:
        """The thresholds of an already validated policy file."""
        try:
            return cls(document.review_threshold, document.decline_threshold)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc

    def decide(self, score: float) -> Action:
        """The action for a fraud probability; an invalid score is a ModelError."""
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ModelError(f"score must be a probability in [0, 1], got {score!r}")
        if score >= self.decline_threshold:
            return Action.DECLINE
        if score >= self.review_threshold:
            return Action.REVIEW
        return Action.APPROVE


def read_policy_file(path: Path) -> PolicyFile:
    """The policy file at ``path``, validated; ConfigError names the file and the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such policy file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the policy file: {exc}") from exc
    try:
        data: Any = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with review_threshold and decline_threshold")
    try:
        return PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from exc
