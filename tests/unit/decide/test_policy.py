"""The policy: thresholds, not the model, turn a probability into an action."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fraudops.decide.policy import Policy
from fraudops.errors import ConfigError, ModelError
from fraudops.settings import PolicySettings
from fraudops.types import Action


def test_thresholds_are_inclusive() -> None:
    """A score equal to a threshold takes that threshold's action."""
    policy = Policy(review_threshold=0.2, decline_threshold=0.8)
    scores = [0.0, 0.199, 0.2, 0.5, 0.8, 1.0]
    expected = [
        Action.APPROVE,
        Action.APPROVE,
        Action.REVIEW,
        Action.REVIEW,
        Action.DECLINE,
        Action.DECLINE,
    ]
    assert expected == [policy.decide(s) for s in scores]


def test_policy_comes_from_settings() -> None:
    """The thresholds are the configured ones."""
    policy = Policy.from_settings(PolicySettings(review_threshold=0.1, decline_threshold=0.3))
    expected = [Action.APPROVE, Action.REVIEW, Action.DECLINE]
    assert expected == [policy.decide(s) for s in (0.05, 0.1, 0.3)]


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -0.1, 1.5])
def test_invalid_score_is_a_model_error(score: float) -> None:
    """A score that is not a probability never becomes a decision."""
    with pytest.raises(ModelError, match="probability"):
        Policy(0.2, 0.8).decide(score)


def test_review_above_decline_is_refused() -> None:
    """Thresholds out of order are a configuration error."""
    with pytest.raises(ConfigError, match="exceeds"):
        Policy(review_threshold=0.9, decline_threshold=0.5)


POLICY_FILE = """\
format: 1
review_threshold: 0.083
decline_threshold: 0.91
provenance:
  reason: least expected cost with at most 100 reviews a day
  model_version: m-1
"""


def write(tmp_path: Path, text: str) -> Path:
    """``text`` as the policy file ``policy.yaml`` in ``tmp_path``."""
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_policy_comes_from_a_file(tmp_path: Path) -> None:
    """A policy file's two thresholds are the policy's."""
    policy = Policy.from_file(write(tmp_path, POLICY_FILE))
    assert Policy(review_threshold=0.083, decline_threshold=0.91) == policy


def test_a_file_in_settings_replaces_the_two_numbers(tmp_path: Path) -> None:
    """With a policy file configured, the file decides, not the default thresholds."""
    settings = PolicySettings(file=write(tmp_path, POLICY_FILE))
    expected = [Action.APPROVE, Action.REVIEW, Action.DECLINE]
    assert expected == [Policy.from_settings(settings).decide(s) for s in (0.08, 0.2, 0.91)]


def test_a_file_and_thresholds_together_are_refused(tmp_path: Path) -> None:
    """Setting both would let the file silently override the numbers, so it is an error."""
    with pytest.raises(ValidationError, match="either a policy file or review_threshold"):
        PolicySettings(file=tmp_path / "policy.yaml", review_threshold=0.3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (POLICY_FILE.replace("0.91", "1.5"), "decline_threshold: Input should be less than"),
        (POLICY_FILE.replace("0.083", "0.95"), "review_threshold 0.95 exceeds"),
        (POLICY_FILE.replace("review_threshold", "review"), "review_threshold: Field required"),
        (POLICY_FILE.replace("format: 1", "format: 2"), "format: Input should be less"),
        (POLICY_FILE + "decline_above: 0.5\n", "decline_above: Extra inputs"),
        (POLICY_FILE.replace("  reason: least", "  why: least"), "provenance.reason: Field"),
        (POLICY_FILE.replace("0.91", ".nan"), "decline_threshold: Input should be a finite"),
        (POLICY_FILE + "review_threshold: 0.5\n", "found the key 'review_threshold' twice"),
        ("review_threshold: [0.1\n", "not valid YAML"),
        ("- 0.1\n- 0.9\n", "expected a mapping"),
    ],
)
def test_a_bad_policy_file_names_the_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    """Each way a policy file can be wrong is a ConfigError saying where and what."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as raised:
        Policy.from_file(path)
    assert str(raised.value).startswith(f"{path}: ")


def test_a_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    """A configured policy file that is not there stops the start, naming the path."""
    settings = PolicySettings(file=tmp_path / "nowhere.yaml")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such policy file"):
        Policy.from_settings(settings)
