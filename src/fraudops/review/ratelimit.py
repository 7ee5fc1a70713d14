"""A sign-in rate limiter: failed attempts per username and per client address.

A sliding window per key: a key with ``max_failures`` failures within ``window`` is
refused until its oldest failure leaves the window. Both the username and the address are
keys, so guessing one account's password from many addresses and trying many accounts
from one address are both slowed. Memory is bounded: each key keeps at most
``max_failures`` times, and at most ``max_keys`` keys are kept (the least recently failed
go first; under a flood of addresses that bound wins over remembering every one).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from fraudops.clock import Clock
from fraudops.errors import InputError, SignInLimitedError


class SignInLimiter:
    """Refuses sign-in attempts for a username or address with too many recent failures."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
        max_keys: int = 100_000,
    ) -> None:
        if max_failures < 1 or max_keys < 2 or window <= timedelta(0):
            raise InputError(
                "sign-in limiter needs max_failures ≥ 1, max_keys ≥ 2 and a positive window"
            )
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, username: str, client: str) -> None:
        """Return if an attempt may go ahead; SignInLimitedError (429) with the wait if not."""
        now = self.clock.now()
        with self._lock:
            waits = [self._wait(key, now) for key in _keys(username, client)]
        wait = max(waits)
        if wait > timedelta(0):
            raise SignInLimitedError(retry_after_s=max(1.0, wait.total_seconds()))

    def failed(self, username: str, client: str) -> None:
        """Count a failed attempt against the username and the address."""
        now = self.clock.now()
        with self._lock:
            for key in _keys(username, client):
                times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
                times.append(now)
                self._failures[key] = times  # now the most recent
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, username: str, client: str) -> None:
        """Forget the username's failures after a good sign-in (the address keeps its own)."""
        with self._lock:
            self._failures.pop(_keys(username, client)[0], None)

    def tracked_keys(self) -> int:
        """How many usernames and addresses are remembered now."""
        with self._lock:
            return len(self._failures)

    def _wait(self, key: str, now: datetime) -> timedelta:
        times = self._failures.get(key)
        if times is None:
            return timedelta(0)
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return timedelta(0)
        if len(times) < self.max_failures:
            return timedelta(0)
        return times[0] + self.window - now


def _keys(username: str, client: str) -> tuple[str, str]:
    return (f"user:{username.strip().lower()}", f"client:{client}")
