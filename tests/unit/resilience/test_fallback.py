"""The fallback chain: the first step that answers wins, and every failure is kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from fraudops.errors import (
    CircuitOpenError,
    FraudopsError,
    InvalidScoreError,
    ResilienceError,
    StageTimeoutError,
    StoreError,
)
from fraudops.resilience import (
    Attempt,
    FallbackChain,
    FallbackExhaustedError,
    FallbackResult,
    Step,
    reason_of,
)


class FallbackLog:
    """Collects every reported (chain, attempt) pair, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Attempt]] = []

    def __call__(self, chain: str, attempt: Attempt) -> None:
        self.events.append((chain, attempt))


def answers(value: str) -> Callable[[], Awaitable[str]]:
    """A step that answers ``value``."""

    async def step() -> str:
        return value

    return step


def raises(error: BaseException) -> Callable[[], Awaitable[str]]:
    """A step that raises ``error``."""

    async def step() -> str:
        raise error

    return step


def run(chain: FallbackChain[str], steps: list[Step[str]]) -> FallbackResult[str]:
    """Run the chain in a fresh event loop."""
    return asyncio.run(chain.run(steps))


def test_first_success_answers_with_no_failures() -> None:
    """When the first step answers, later steps are not tried and nothing is degraded."""
    tried: list[str] = []

    async def rules() -> str:
        tried.append("rules")
        return "review"

    log = FallbackLog()
    result = run(
        FallbackChain("decide", on_fallback=log), [("model", answers("approve")), ("rules", rules)]
    )
    assert ("approve", "model", (), False) == (
        result.value,
        result.step,
        result.failures,
        result.degraded,
    )
    assert ([], []) == (tried, log.events)


def test_failing_steps_are_recorded_with_reasons_in_order() -> None:
    """Each failed step is kept and reported with its reason; the answer says degraded."""
    log = FallbackLog()
    steps: list[Step[str]] = [
        ("model", raises(StageTimeoutError("model", 0.03))),
        ("previous_model", raises(CircuitOpenError("previous_model"))),
        ("rules", answers("review")),
        ("static", answers("approve")),
    ]
    result = run(FallbackChain("decide", on_fallback=log), steps)
    expected_failures = (Attempt("model", "timeout"), Attempt("previous_model", "breaker_open"))
    assert ("review", "rules", expected_failures, True) == (
        result.value,
        result.step,
        result.failures,
        result.degraded,
    )
    assert [("decide", failure) for failure in expected_failures] == log.events


def test_attempt_keeps_the_error_message_as_detail() -> None:
    """The message is kept for logs; attempts compare by step and reason alone."""
    result = run(
        FallbackChain("decide"),
        [("model", raises(InvalidScoreError("score is NaN"))), ("rules", answers("review"))],
    )
    (failure,) = result.failures
    assert ("score is NaN", Attempt("model", "invalid_score")) == (failure.detail, failure)


def test_exhausted_chain_raises_with_every_failure() -> None:
    """If the last step fails too, the error carries all failures and chains the last one."""
    log = FallbackLog()
    last = StoreError("redis unreachable")
    steps: list[Step[str]] = [("model", raises(ValueError("bad input"))), ("rules", raises(last))]
    with pytest.raises(FallbackExhaustedError) as caught:
        run(FallbackChain("decide", on_fallback=log), steps)
    expected = (Attempt("model", "value_error"), Attempt("rules", "store_error"))
    assert (expected, "decide", last) == (
        caught.value.failures,
        caught.value.chain,
        caught.value.__cause__,
    )
    assert isinstance(caught.value, ResilienceError)
    assert ("fallback_exhausted", 2) == (caught.value.reason, len(log.events))


def test_cancellation_propagates_and_stops_the_chain() -> None:
    """A cancelled step is never treated as a failure to fall back from."""
    tried: list[str] = []

    async def rules() -> str:
        tried.append("rules")
        return "review"

    log = FallbackLog()
    steps: list[Step[str]] = [("model", raises(asyncio.CancelledError())), ("rules", rules)]
    with pytest.raises(asyncio.CancelledError):
        run(FallbackChain("decide", on_fallback=log), steps)
    assert ([], []) == (tried, log.events)


def test_no_steps_is_an_error() -> None:
    """A chain given nothing to try is a programming mistake, said at once."""
    with pytest.raises(ValueError, match="no steps"):
        run(FallbackChain("decide"), [])


class HTTPError(Exception):
    """A stand-in for a client library's error with an acronym in its name."""


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (StageTimeoutError("score", 0.01), "timeout"),
        (CircuitOpenError("model"), "breaker_open"),
        (InvalidScoreError("NaN"), "invalid_score"),
        (FraudopsError("generic"), "error"),
        (ValueError("x"), "value_error"),
        (ConnectionRefusedError(), "connection_refused_error"),
        (json.JSONDecodeError("x", "doc", 0), "json_decode_error"),
        (HTTPError(), "http_error"),
        (asyncio.CancelledError(), "cancelled_error"),
    ],
)
def test_reason_of_names_a_failure_in_one_word(error: BaseException, expected: str) -> None:
    """fraudops errors give their reason code; others their class name in snake_case."""
    assert expected == reason_of(error)
