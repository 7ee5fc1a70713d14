"""The deadline: every stage runs inside what remains of a decision's time budget."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Iterator

import pytest

from fraudops.errors import ConfigError, StageTimeoutError
from fraudops.resilience import Deadline
from tests.unit.resilience.fake_clock import FakeClock

# Long enough that reaching it means the deadline failed; the tests never wait for it.
NEVER_S = 10.0
# Short real timeouts: the event loop, not the fake clock, enforces a running stage's limit.
SHORT_S = 0.02


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """A private thread pool, shut down (waiting for its threads) after the test."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True)


def test_remaining_shrinks_as_time_passes() -> None:
    """Elapsed grows and remaining shrinks with the clock, and remaining stops at zero."""
    clock = FakeClock()
    deadline = Deadline(0.1, clock=clock)
    observed = []
    for step in (0.0, 0.03, 0.05, 0.05):
        clock.advance(step)
        observed.append((deadline.elapsed(), deadline.remaining(), deadline.expired()))
    expected = [
        (0.0, 0.1, False),
        (pytest.approx(0.03), pytest.approx(0.07), False),
        (pytest.approx(0.08), pytest.approx(0.02), False),
        (pytest.approx(0.13), 0.0, True),
    ]
    assert expected == observed


def test_negative_budget_is_a_config_error() -> None:
    """A budget below zero is refused when the deadline is made."""
    with pytest.raises(ConfigError, match="budget"):
        Deadline(-0.1)


def test_fast_stage_returns_its_value() -> None:
    """A stage that finishes in time returns its own result."""

    async def score() -> float:
        return 0.42

    assert 0.42 == asyncio.run(Deadline(NEVER_S).run(score(), stage="score"))


def test_slow_coroutine_is_cancelled_with_a_stage_timeout() -> None:
    """A coroutine that outruns the budget is cancelled and the caller gets the stage's name."""
    cancelled = False

    async def hang() -> None:
        nonlocal cancelled
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise

    with pytest.raises(StageTimeoutError) as caught:
        asyncio.run(Deadline(SHORT_S).run(hang(), stage="features"))
    assert ("features", True) == (caught.value.stage, cancelled)
    assert "timeout" == caught.value.reason


def test_stage_timeout_tighter_than_budget_applies() -> None:
    """A stage's own timeout applies when it is shorter than what the decision has left."""

    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(StageTimeoutError) as caught:
        asyncio.run(Deadline(NEVER_S).run(hang(), stage="score", timeout_s=SHORT_S))
    assert SHORT_S == caught.value.timeout_s


def test_remaining_budget_caps_the_stage_timeout() -> None:
    """A stage gets no more than the decision has left, whatever its own timeout."""
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.advance(1.0 - SHORT_S)

    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(StageTimeoutError) as caught:
        asyncio.run(deadline.run(hang(), stage="score", timeout_s=NEVER_S))
    assert pytest.approx(SHORT_S) == caught.value.timeout_s


def test_expired_deadline_does_not_start_the_work() -> None:
    """With no time left the stage fails at once; its coroutine never runs and is closed."""
    clock = FakeClock()
    deadline = Deadline(0.05, clock=clock)
    clock.advance(0.06)
    started = False

    async def work() -> None:
        nonlocal started
        started = True

    coroutine = work()
    with pytest.raises(StageTimeoutError) as caught:
        asyncio.run(deadline.run(coroutine, stage="log"))
    # Closed, not merely left pending: a pending one warns "never awaited" when collected.
    state = inspect.getcoroutinestate(coroutine)
    assert (False, 0.0, inspect.CORO_CLOSED) == (started, caught.value.timeout_s, state)


def test_the_work_s_own_timeout_error_is_not_a_stage_timeout() -> None:
    """A TimeoutError raised by the work itself passes through as that error."""

    async def client_times_out() -> None:
        raise TimeoutError("socket read timed out")

    with pytest.raises(TimeoutError) as caught:
        asyncio.run(Deadline(NEVER_S).run(client_times_out(), stage="store"))
    assert TimeoutError is type(caught.value)


def test_thread_function_returns_its_value(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """A function run on the executor in time returns its result, given its arguments."""

    def add(a: int, b: int) -> int:
        return a + b

    deadline = Deadline(NEVER_S)
    assert 5 == asyncio.run(deadline.run_in_thread(executor, add, 2, 3, stage="score"))


def test_slow_thread_function_times_out_at_once(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """The caller gets the timeout while the thread is still busy; the thread runs on."""
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def blocking() -> None:
        entered.set()
        release.wait(NEVER_S)
        finished.set()

    with pytest.raises(StageTimeoutError) as caught:
        asyncio.run(Deadline(SHORT_S).run_in_thread(executor, blocking, stage="score"))
    still_running = entered.is_set() and not finished.is_set()
    release.set()
    assert ("score", True) == (caught.value.stage, still_running)
    assert finished.wait(NEVER_S)


def test_expired_deadline_does_not_submit_the_thread_function(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """With no time left nothing is handed to the executor."""
    clock = FakeClock()
    deadline = Deadline(0.0, clock=clock)
    calls: list[str] = []

    with pytest.raises(StageTimeoutError):
        asyncio.run(deadline.run_in_thread(executor, calls.append, "ran", stage="score"))
    executor.shutdown(wait=True)
    assert [] == calls


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_thread_function_sees_the_caller_s_context(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """Context variables (trace and log context) carry into the thread."""

    async def decide() -> str:
        request_id.set("tx-1")
        return await Deadline(NEVER_S).run_in_thread(executor, request_id.get, stage="score")

    assert "tx-1" == asyncio.run(decide())


def test_work_finished_in_time_is_kept_when_the_event_loop_was_late(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """A stalled loop sees timer and result together: the result that was ready wins."""
    finished = threading.Event()

    def quick() -> int:
        finished.set()
        return 42

    async def stall_then_wait() -> int:
        task = asyncio.ensure_future(
            Deadline(1.0).run_in_thread(executor, quick, stage="score", timeout_s=0.01)
        )
        await asyncio.sleep(0)  # the work is submitted and its timer set
        assert finished.wait(1.0)
        # The loop stalls past the timeout (as in a GC pause) without running anything.
        threading.Event().wait(0.05)
        return await task

    assert 42 == asyncio.run(stall_then_wait())
