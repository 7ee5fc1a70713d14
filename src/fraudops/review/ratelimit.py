"""Sign-in rate limiters: failed attempts per username and per client address.

A sliding window per key: a key with ``max_failures`` failures within ``window`` is
refused until the oldest of its last ``max_failures`` failures leaves the window. Both the
username and the address are keys, so guessing one account's password from many addresses
and trying many accounts from one address are both slowed.

Two limiters keep the failures: :class:`SqlSignInLimiter` in the review database, so every
replica of the service (and a restarted one) enforces one limit; the desk uses it.
:class:`InMemorySignInLimiter` in this process, for a single process without a database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from fraudops.clock import Clock
from fraudops.errors import InputError, SignInLimitedError
from fraudops.review import _schema
from fraudops.sql import as_utc, utc

if TYPE_CHECKING:
    from fraudops.review.database import ReviewDatabase


class SignInLimiter(Protocol):
    """Refuses sign-in attempts for a username or address with too many recent failures."""

    def check(self, username: str, client: str) -> None:
        """Return if an attempt may go ahead; SignInLimitedError (429) with the wait if not."""
        ...

    def failed(self, username: str, client: str) -> None:
        """Count a failed attempt against the username and the address."""
        ...

    def succeeded(self, username: str, client: str) -> None:
        """Forget the username's failures after a good sign-in (the address keeps its own)."""
        ...


def _check_limits(max_failures: int, window: timedelta) -> None:
    if max_failures < 1 or window <= timedelta(0):
        raise InputError("sign-in limiter needs max_failures ≥ 1 and a positive window")


class SqlSignInLimiter:
    """The failures as rows of the review database, shared by every process using it.

    Each check reads at most ``max_failures`` rows per key through an index; each failure
    also deletes every failure that has left the window, so the table holds one window's
    worth of failures at most.
    """

    def __init__(
        self,
        database: ReviewDatabase,
        clock: Clock,
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        _check_limits(max_failures, window)
        self.database = database
        self.clock = clock
        self.max_failures = max_failures
        self.window = window

    def check(self, username: str, client: str) -> None:
        """Return if an attempt may go ahead; SignInLimitedError (429) with the wait if not."""
        now = self.clock.now()
        table = _schema.sign_in_failures
        waits = [timedelta(0)]
        with self.database.begin("check the sign-in limits") as connection:
            for key in _keys(username, client):
                recent = connection.execute(
                    sa.select(table.c.at)
                    .where(table.c.key == key, table.c.at > utc(now - self.window))
                    .order_by(table.c.at.desc())
                    .limit(self.max_failures)
                ).scalars()
                times = [as_utc(at) for at in recent]
                if len(times) == self.max_failures:
                    waits.append(times[-1] + self.window - now)
        wait = max(waits)
        if wait > timedelta(0):
            raise SignInLimitedError(retry_after_s=max(1.0, wait.total_seconds()))

    def failed(self, username: str, client: str) -> None:
        """Count a failed attempt against the username and the address."""
        now = utc(self.clock.now())
        table = _schema.sign_in_failures
        with self.database.begin("count a failed sign-in") as connection:
            connection.execute(table.delete().where(table.c.at <= now - self.window))
            connection.execute(
                table.insert(), [{"key": key, "at": now} for key in _keys(username, client)]
            )

    def succeeded(self, username: str, client: str) -> None:
        """Forget the username's failures after a good sign-in (the address keeps its own)."""
        table = _schema.sign_in_failures
        with self.database.begin("clear a user's failed sign-ins") as connection:
            connection.execute(table.delete().where(table.c.key == _keys(username, client)[0]))


class InMemorySignInLimiter:
    """The failures in this process's memory, bounded: each key keeps at most
    ``max_failures`` times, and at most ``max_keys`` keys are kept (the least recently failed
    go first; under a flood of addresses that bound wins over remembering every one)."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
        max_keys: int = 100_000,
    ) -> None:
        _check_limits(max_failures, window)
        if max_keys < 2:
            raise InputError(f"sign-in limiter needs max_keys ≥ 2, got {max_keys}")
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
