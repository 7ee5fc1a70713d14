"""Load shedding: a bound on work in flight, and a quick "no" once it is reached.

Past its capacity a service that queues gets slower for everyone until every request
misses its deadline; one that sheds answers the excess at once (HTTP 503 with
:class:`~fraudops.errors.OverloadedError`, reason ``shed``) and keeps its latency for the
rest. A shed request is an observable event: ``on_shed(name)`` is called for each.

This is a bounded in-flight counter and needs no library. It never waits: a semaphore
would queue the excess, which is exactly what shedding avoids.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fraudops.errors import ConfigError


class LoadShedder:
    """Admits at most ``limit`` units of work at once and sheds the rest.

    Thread-safe (a lock around the counter), so a synchronous route run in a thread pool
    can share it with the event loop. ``on_shed`` is called outside the lock and must not
    raise (an exception from it reaches the caller).
    """

    def __init__(
        self,
        name: str,
        limit: int,
        *,
        on_shed: Callable[[str], None] | None = None,
        pressure: Callable[[], bool] | None = None,
    ) -> None:
        if limit < 1:
            raise ConfigError(f"load shedder {name!r} needs a limit >= 1, got {limit}")
        self.name = name
        self.limit = limit
        self._on_shed = on_shed
        # Work can pile up before it is counted (in socket buffers, behind a saturated
        # event loop): ``pressure`` says so, and sheds even below the in-flight bound.
        self._pressure = pressure
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Units of work admitted and not yet released."""
        return self._in_flight

    def try_acquire(self) -> bool:
        """Admit one unit of work, or shed it (False, and ``on_shed``) at the limit."""
        under_pressure = self._pressure is not None and self._pressure()
        with self._lock:
            admitted = self._in_flight < self.limit and not under_pressure
            if admitted:
                self._in_flight += 1
        if not admitted and self._on_shed is not None:
            self._on_shed(self.name)
        return admitted

    def release(self) -> None:
        """Give back one admitted unit of work."""
        with self._lock:
            if self._in_flight == 0:
                # Releasing more than was admitted would silently raise the bound.
                raise RuntimeError(f"load shedder {self.name!r} released more than it admitted")
            self._in_flight -= 1

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Try to admit; yields whether admitted, and releases on exit only if it was."""
        admitted = self.try_acquire()
        try:
            yield admitted
        finally:
            if admitted:
                self.release()

    def __repr__(self) -> str:
        return f"LoadShedder({self.name!r}, in_flight={self._in_flight}, limit={self.limit})"


class LoopLag:
    """How late the event loop runs a timer: the sign of more work than it can do.

    A loop that is saturated never lets requests reach an in-flight counter: they wait in
    socket buffers and are late before anyone counts them. ``run`` wakes every
    ``interval_s`` and smooths how late each wake-up was; ``overloaded`` is true while that
    exceeds ``limit_s``, which a :class:`LoadShedder` takes as pressure to shed.
    """

    def __init__(
        self,
        *,
        limit_s: float,
        interval_s: float = 0.005,
        smoothing: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit_s <= 0 or interval_s <= 0 or not 0 < smoothing <= 1:
            raise ConfigError("loop lag needs a positive limit and interval, smoothing in (0, 1]")
        self.limit_s = limit_s
        self.interval_s = interval_s
        self.smoothing = smoothing
        self.lag_s = 0.0
        self._clock = clock

    def observe(self, late_s: float) -> None:
        """Fold one wake-up's lateness into the smoothed lag."""
        self.lag_s += self.smoothing * (max(late_s, 0.0) - self.lag_s)

    def overloaded(self) -> bool:
        """Whether the smoothed lag is over the limit."""
        return self.lag_s > self.limit_s

    async def run(self) -> None:
        """Measure until cancelled."""
        while True:
            expected = self._clock() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.observe(self._clock() - expected)
