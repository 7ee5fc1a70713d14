"""The score guard: only finite probabilities pass, and a model stuck on a constant trips it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudops.decide.guard import ScoreGuard
from fraudops.errors import ConfigError, InvalidScoreError


def _feed(guard: ScoreGuard, scores: list[float]) -> list[bool]:
    """Which scores the guard refused, in order."""
    refused = []
    for score in scores:
        try:
            guard.check("m1", score)
        except InvalidScoreError:
            refused.append(True)
        else:
            refused.append(False)
    return refused


@pytest.mark.parametrize("score", [0.0, 0.37, 1.0])
def test_a_probability_passes_unchanged(score: float) -> None:
    """A finite score in [0, 1] is returned as it came."""
    assert score == ScoreGuard().check("m1", score)


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf, -0.01, 1.01])
def test_a_non_probability_is_refused(score: float) -> None:
    """NaN, infinite and out-of-range scores are invalid, and the error names the model."""
    with pytest.raises(InvalidScoreError, match=r"model m1 answered .*not a probability"):
        ScoreGuard().check("m1", score)


def test_the_error_is_the_invalid_score_reason() -> None:
    """Fallbacks and metrics record the refusal as ``invalid_score``."""
    assert "invalid_score" == InvalidScoreError.reason


def test_a_constant_run_trips_at_its_length() -> None:
    """The ``constant_run``-th identical score in a row is refused, not one before."""
    run = 5
    assert [False] * (run - 1) + [True] == _feed(ScoreGuard(run), [0.1] * run)


def test_a_stuck_model_keeps_being_refused() -> None:
    """Each further identical score is refused too, and the message says why."""
    guard = ScoreGuard(3)
    _feed(guard, [0.2] * 3)
    with pytest.raises(InvalidScoreError, match=r"0\.2 for 4 transactions in a row: stuck"):
        guard.check("m1", 0.2)


def test_a_different_score_ends_the_run() -> None:
    """Once the model answers something else, it is trusted again from scratch."""
    guard = ScoreGuard(3)
    refused = _feed(guard, [0.2, 0.2, 0.2, 0.3, 0.2, 0.2])
    assert [False, False, True, False, False, False] == refused


def test_reset_forgets_the_run() -> None:
    """After reset (a new model) the run starts over."""
    guard = ScoreGuard(3)
    _feed(guard, [0.2, 0.2])
    guard.reset()
    assert ([False, False], 2) == (_feed(guard, [0.2, 0.2]), guard.run_length)


def test_invalid_scores_do_not_hide_a_stuck_model() -> None:
    """A NaN between identical scores is refused on its own and does not break the run."""
    guard = ScoreGuard(3)
    assert [False, False, True, True] == _feed(guard, [0.2, 0.2, math.nan, 0.2])


@pytest.mark.parametrize("constant_run", [1, 0, -5])
def test_a_run_shorter_than_two_is_a_config_error(constant_run: int) -> None:
    """A run of one would refuse every score."""
    with pytest.raises(ConfigError, match="constant_run"):
        ScoreGuard(constant_run)


VALID = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))


@st.composite
def _short_runs(draw: st.DrawFn) -> tuple[int, list[float]]:
    """A run length and valid scores in which no value repeats that many times in a row."""
    constant_run = draw(st.integers(2, 8))
    runs = draw(st.lists(st.tuples(VALID, st.integers(1, constant_run - 1)), max_size=40))
    scores: list[float] = []
    for value, length in runs:
        if not scores or scores[-1] != value:
            scores += [value] * length
    return constant_run, scores


@given(_short_runs())
def test_never_refuses_valid_scores_without_a_long_run(case: tuple[int, list[float]]) -> None:
    """Valid scores never trip the guard unless ``constant_run`` of them in a row are equal."""
    constant_run, scores = case
    assert [False] * len(scores) == _feed(ScoreGuard(constant_run), scores)


@given(
    st.integers(2, 6),
    st.lists(st.sampled_from([0.0, 0.25, 1.0, math.nan]), max_size=60),
)
def test_refuses_exactly_when_the_last_valid_scores_are_equal(
    constant_run: int, scores: list[float]
) -> None:
    """The O(1) guard agrees with reading the whole history: invalid, or a full run of equals."""
    valid: list[float] = []
    expected = []
    for score in scores:
        if math.isnan(score):
            expected.append(True)
            continue
        valid.append(score)
        tail = valid[-constant_run:]
        expected.append(len(tail) == constant_run and len(set(tail)) == 1)
    assert expected == _feed(ScoreGuard(constant_run), scores)
