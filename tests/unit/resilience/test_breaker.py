"""The circuit breaker: opens on consecutive failures, retries one trial, reports each trip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudops.errors import CircuitOpenError, ConfigError, InvalidScoreError
from fraudops.resilience import BreakerState, CircuitBreaker
from tests.unit.resilience.fake_clock import FakeClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
RESET_S = 5.0

Transition = tuple[str, BreakerState, BreakerState]


class Recorder:
    """Collects every reported transition, in order."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    def __call__(self, name: str, old: BreakerState, new: BreakerState) -> None:
        self.transitions.append((name, old, new))


def make_breaker(threshold: int = 3) -> tuple[CircuitBreaker, FakeClock, Recorder]:
    """A breaker named ``model`` on a fake clock, with a recorder for its transitions."""
    clock, recorder = FakeClock(), Recorder()
    breaker = CircuitBreaker(
        "model",
        failure_threshold=threshold,
        reset_timeout_s=RESET_S,
        on_state_change=recorder,
        clock=clock,
    )
    return breaker, clock, recorder


async def ok() -> str:
    return "ok"


async def down() -> str:
    raise ConnectionError("model server down")


async def attempt(breaker: CircuitBreaker, fn: Callable[[], Awaitable[str]]) -> str:
    """One call through the breaker, named by how it ended."""
    try:
        return await breaker.call(fn)
    except CircuitOpenError:
        return "rejected"
    except ConnectionError:
        return "failed"


def outcome(breaker: CircuitBreaker, fn: Callable[[], Awaitable[str]]) -> str:
    """Run one call through the breaker in a fresh event loop and name how it ended."""
    return asyncio.run(attempt(breaker, fn))


def trip(breaker: CircuitBreaker) -> None:
    """Fail calls until the breaker opens."""
    for _ in range(breaker.failure_threshold):
        outcome(breaker, down)


def test_opens_after_threshold_consecutive_failures() -> None:
    """The breaker stays closed below the threshold and opens on reaching it."""
    breaker, _, recorder = make_breaker(threshold=3)
    states = []
    for _ in range(3):
        outcome(breaker, down)
        states.append(breaker.state)
    assert [CLOSED, CLOSED, OPEN] == states
    assert [("model", CLOSED, OPEN)] == recorder.transitions


def test_failures_reach_the_caller_unchanged() -> None:
    """A failing call raises its own exception, the tripping one included."""
    breaker, _, _ = make_breaker(threshold=1)
    with pytest.raises(ConnectionError, match="model server down"):
        asyncio.run(breaker.call(down))
    assert OPEN == breaker.state


def test_success_resets_the_failure_count() -> None:
    """Only consecutive failures count: a success in between starts the count again."""
    breaker, _, recorder = make_breaker(threshold=3)
    for fn in (down, down, ok, down, down):
        outcome(breaker, fn)
    assert (CLOSED, 2, []) == (breaker.state, breaker.failure_count, recorder.transitions)


def test_open_breaker_rejects_without_calling() -> None:
    """While open, calls fail at once with the breaker's name and the function is not run."""
    breaker, clock, _ = make_breaker()
    trip(breaker)
    clock.advance(RESET_S - 0.001)
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitOpenError) as caught:
        asyncio.run(breaker.call(counted))
    assert ("model", "breaker_open", 0) == (caught.value.breaker, caught.value.reason, calls)


def test_half_open_after_reset_timeout() -> None:
    """The breaker reads half-open once the reset timeout has passed, not before."""
    breaker, clock, _ = make_breaker()
    trip(breaker)
    clock.advance(RESET_S - 0.001)
    before = breaker.state
    clock.advance(0.001)
    assert (OPEN, HALF_OPEN) == (before, breaker.state)


def test_half_open_admits_exactly_one_trial_under_concurrency() -> None:
    """While the trial runs, every other caller is rejected; the trial alone reaches fn."""
    breaker, clock, _ = make_breaker()
    trip(breaker)
    clock.advance(RESET_S)
    calls = 0

    async def scenario() -> list[str]:
        gate = asyncio.Event()

        async def slow_trial() -> str:
            nonlocal calls
            calls += 1
            await gate.wait()
            return "ok"

        async def attempt() -> str:
            try:
                return await breaker.call(slow_trial)
            except CircuitOpenError:
                return "rejected"

        trial = asyncio.create_task(attempt())
        await asyncio.sleep(0)  # let the trial start and take the slot
        others = [asyncio.create_task(attempt()) for _ in range(5)]
        await asyncio.sleep(0)  # let the others reach the breaker while the trial holds it
        gate.set()
        return await asyncio.gather(trial, *others)

    assert ["ok"] + ["rejected"] * 5 == asyncio.run(scenario())
    assert (1, CLOSED) == (calls, breaker.state)


def test_trial_success_closes() -> None:
    """A successful trial closes the breaker and calls flow again."""
    breaker, clock, _ = make_breaker()
    trip(breaker)
    clock.advance(RESET_S)
    assert ["ok", "ok"] == [outcome(breaker, ok), outcome(breaker, ok)]
    assert CLOSED == breaker.state


def test_trial_failure_reopens_for_another_full_timeout() -> None:
    """A failed trial opens the breaker again, counted from the failure."""
    breaker, clock, _ = make_breaker()
    trip(breaker)
    clock.advance(RESET_S)
    first = outcome(breaker, down)
    clock.advance(RESET_S - 0.001)
    still = (breaker.state, outcome(breaker, ok))
    clock.advance(0.001)
    assert ("failed", (OPEN, "rejected"), HALF_OPEN) == (first, still, breaker.state)


def test_every_transition_is_reported_once_in_order() -> None:
    """A full cycle reports each change once, however often the state is read."""
    breaker, clock, recorder = make_breaker(threshold=2)
    trip(breaker)
    clock.advance(RESET_S)
    for _ in range(3):
        _ = breaker.state
    outcome(breaker, down)
    clock.advance(RESET_S)
    outcome(breaker, ok)
    _ = breaker.state
    expected = [
        ("model", CLOSED, OPEN),
        ("model", OPEN, HALF_OPEN),
        ("model", HALF_OPEN, OPEN),
        ("model", OPEN, HALF_OPEN),
        ("model", HALF_OPEN, CLOSED),
    ]
    assert expected == recorder.transitions


def test_record_failure_counts_toward_the_threshold() -> None:
    """Failures judged outside a call (a bad score) count like failed calls."""
    breaker, _, recorder = make_breaker(threshold=3)
    outcome(breaker, down)
    breaker.record_failure(InvalidScoreError("score is NaN"))
    breaker.record_failure(InvalidScoreError("score is NaN"))
    assert OPEN == breaker.state
    assert "score is NaN" == str(breaker.last_failure)
    assert [("model", CLOSED, OPEN)] == recorder.transitions


def test_record_failure_reopens_half_open_and_is_ignored_when_open() -> None:
    """Half-open, a recorded failure reopens the breaker; open, it changes nothing."""
    breaker, clock, recorder = make_breaker()
    trip(breaker)
    breaker.record_failure(InvalidScoreError("stuck"))
    clock.advance(RESET_S)
    breaker.record_failure(InvalidScoreError("stuck"))
    expected = [("model", CLOSED, OPEN), ("model", OPEN, HALF_OPEN), ("model", HALF_OPEN, OPEN)]
    assert expected == recorder.transitions


def test_forced_open_stays_open_until_reset() -> None:
    """An operator's force_open holds past the reset timeout; reset closes it again."""
    breaker, clock, recorder = make_breaker()
    breaker.force_open()
    clock.advance(RESET_S * 10)
    held = (breaker.state, outcome(breaker, ok))
    breaker.reset()
    assert ((OPEN, "rejected"), CLOSED, "ok") == (held, breaker.state, outcome(breaker, ok))
    assert [("model", CLOSED, OPEN), ("model", OPEN, CLOSED)] == recorder.transitions


def test_reset_forgets_counted_failures() -> None:
    """After a reset the full threshold of failures is needed to open again."""
    breaker, _, _ = make_breaker(threshold=3)
    outcome(breaker, down)
    outcome(breaker, down)
    breaker.reset()
    outcome(breaker, down)
    assert (CLOSED, 1) == (breaker.state, breaker.failure_count)


def test_cancellation_is_not_a_failure() -> None:
    """A cancelled call counts neither way; a cancelled trial frees the slot for the next."""
    breaker, clock, recorder = make_breaker(threshold=1)

    async def cancel_one_call() -> None:
        task = asyncio.create_task(breaker.call(asyncio.Event().wait))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_one_call())
    closed_after_cancel = breaker.state
    trip(breaker)
    clock.advance(RESET_S)
    asyncio.run(cancel_one_call())
    half_open_after_cancelled_trial = breaker.state
    assert (CLOSED, HALF_OPEN) == (closed_after_cancel, half_open_after_cancelled_trial)
    assert ("ok", CLOSED) == (outcome(breaker, ok), breaker.state)
    assert [CLOSED, OPEN, HALF_OPEN] == [old for _, old, _ in recorder.transitions]


@pytest.mark.parametrize(("late", "expected"), [(ok, "ok"), (down, "failed")])
def test_late_outcome_of_a_call_admitted_before_a_trip_is_ignored(
    late: Callable[[], Awaitable[str]], expected: str
) -> None:
    """A slow call that started while closed neither closes nor reopens a half-open breaker."""
    breaker, clock, recorder = make_breaker(threshold=2)

    async def scenario() -> str:
        gate = asyncio.Event()

        async def slow() -> str:
            await gate.wait()
            return await late()

        slow_call = asyncio.create_task(attempt(breaker, slow))
        await asyncio.sleep(0)
        breaker.record_failure(ConnectionError("down"))
        breaker.record_failure(ConnectionError("down"))
        clock.advance(RESET_S)
        _ = breaker.state
        gate.set()
        return await slow_call

    assert (expected, HALF_OPEN) == (asyncio.run(scenario()), breaker.state)
    assert [("model", CLOSED, OPEN), ("model", OPEN, HALF_OPEN)] == recorder.transitions


@pytest.mark.parametrize(
    ("threshold", "reset_s"), [(0, 5.0), (3, 0.0), (3, -1.0), (3, float("nan"))]
)
def test_invalid_settings_are_refused(threshold: int, reset_s: float) -> None:
    """A threshold below one or a reset timeout that is not positive is a config error."""
    with pytest.raises(ConfigError):
        CircuitBreaker("model", failure_threshold=threshold, reset_timeout_s=reset_s)


operations = st.lists(
    st.sampled_from(["ok", "fail", "record_failure", "wait", "force_open", "reset", "read"]),
    max_size=40,
)


@given(ops=operations, threshold=st.integers(min_value=1, max_value=4))
def test_reported_transitions_always_chain_to_the_current_state(
    ops: list[str], threshold: int
) -> None:
    """Whatever happens, each report starts where the last ended and the last is the state."""
    breaker, clock, recorder = make_breaker(threshold=threshold)

    async def play() -> None:
        for op in ops:
            if op == "ok":
                await attempt(breaker, ok)
            elif op == "fail":
                await attempt(breaker, down)
            elif op == "record_failure":
                breaker.record_failure(ConnectionError("down"))
            elif op == "wait":
                clock.advance(RESET_S)
            elif op == "force_open":
                breaker.force_open()
            elif op == "reset":
                breaker.reset()
            else:
                _ = breaker.state

    asyncio.run(play())
    final = breaker.state
    walked = [CLOSED]
    for _, old, new in recorder.transitions:
        assert walked[-1] == old
        assert old != new
        walked.append(new)
    assert walked[-1] == final
