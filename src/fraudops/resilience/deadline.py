"""A decision's time budget: every stage runs inside what remains of it.

A transaction must get a decision within its deadline, so each stage (feature lookup,
scoring, logging) runs under the smaller of its own timeout and the time the decision has
left. When either runs out the stage is cancelled and the caller gets a
:class:`~fraudops.errors.StageTimeoutError` naming the stage, which fallbacks, metrics and
logs record as ``timeout``.

Timeouts use the standard library's ``asyncio.timeout`` (Python 3.11); no library needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fraudops.errors import ConfigError, StageTimeoutError

T = TypeVar("T")


class Deadline:
    """A decision's time budget; every stage runs inside what remains of it.

    The budget starts when the deadline is made. ``clock`` tells elapsed seconds (monotonic
    by default, so wall-clock jumps do not move deadlines); the timeouts themselves are
    enforced by the event loop.
    """

    def __init__(self, budget_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not budget_s >= 0.0:
            raise ConfigError(f"a deadline's budget must be >= 0 s, got {budget_s}")
        self.budget_s = budget_s
        self._clock = clock
        self._started = clock()

    def elapsed(self) -> float:
        """Seconds since the deadline was made."""
        return self._clock() - self._started

    def remaining(self) -> float:
        """Seconds left of the budget; never negative."""
        return max(0.0, self.budget_s - self.elapsed())

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.remaining() <= 0.0

    def limit(self, timeout_s: float | None = None) -> float:
        """The time a stage may take now: ``timeout_s`` capped by what remains."""
        remaining = self.remaining()
        return remaining if timeout_s is None else max(0.0, min(timeout_s, remaining))

    async def run(
        self, awaitable: Awaitable[T], *, stage: str, timeout_s: float | None = None
    ) -> T:
        """Await ``awaitable`` under ``min(timeout_s, remaining())``.

        Raises StageTimeoutError (after cancelling the awaitable) if that runs out. If
        there is no time left the awaitable is never started.
        """
        limit = self.limit(timeout_s)
        if limit <= 0.0:
            _discard(awaitable)
            raise StageTimeoutError(stage, limit)
        timeout = asyncio.timeout(limit)
        try:
            async with timeout:
                return await awaitable
        except TimeoutError as exc:
            # A TimeoutError raised by the work itself (a socket, a client library) is that
            # stage's own error, not ours: only our expiry becomes a StageTimeoutError.
            if timeout.expired():
                raise StageTimeoutError(stage, limit) from exc
            raise

    async def run_in_thread(
        self,
        executor: concurrent.futures.Executor,
        fn: Callable[..., T],
        *args: object,
        stage: str,
        timeout_s: float | None = None,
    ) -> T:
        """Run ``fn(*args)`` on ``executor`` under the same limit as :meth:`run`.

        On timeout the caller gets StageTimeoutError at once; the thread cannot be killed
        and runs on to its end, its result dropped. So CPU-bound work given a deadline
        should be small, or the executor bounded, or a timed-out stage piles up threads.
        """
        limit = self.limit(timeout_s)
        if limit <= 0.0:
            raise StageTimeoutError(stage, limit)
        # Run in a copy of this context so tracing spans and log context carry into the
        # thread, as asyncio.to_thread does (run_in_executor alone does not).
        context = contextvars.copy_context()
        work = executor.submit(context.run, fn, *args)
        try:
            return await self.run(asyncio.wrap_future(work), stage=stage, timeout_s=limit)
        except StageTimeoutError:
            # The event loop itself can be late (a GC pause, a busy machine): when the timer
            # and the finished work are handled in the same turn, the work was on time.
            if work.done() and not work.cancelled():
                return work.result()
            raise


def _discard(awaitable: Awaitable[object]) -> None:
    """Drop work that will not be awaited, without a 'never awaited' warning or a stray task."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()
    elif asyncio.isfuture(awaitable):
        awaitable.cancel()
