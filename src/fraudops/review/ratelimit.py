"""Sign-in rate limiters: failed attempts per username and per client address.

A sliding window per key: a key with its limit of failures within ``window`` is refused
until the oldest of its last that-many failures leaves the window. Both the username and
the address are keys, so guessing one account's password from many addresses and trying
many accounts from one address are both slowed. They have limits of their own: a username
``max_failures``, an address ``max_client_failures`` (by default
:data:`ADDRESS_LIMIT_FACTOR` times more), because a whole office can sit behind one NAT
address, and one analyst's typos must not lock out the colleagues beside them; an address
spraying passwords across many usernames still reaches its limit.

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


ADDRESS_LIMIT_FACTOR = 5
"""How many times a username's limit of failures an address may have, unless told."""


def _client_limit(max_failures: int, max_client_failures: int | None, window: timedelta) -> int:
    """The address's limit (checked, with the username's and the window)."""
    client_limit = (
        ADDRESS_LIMIT_FACTOR * max_failures if max_client_failures is None else max_client_failures
    )
    if max_failures < 1 or client_limit < 1 or window <= timedelta(0):
        raise InputError(
            "sign-in limiter needs max_failures ≥ 1, max_client_failures ≥ 1 and a positive window"
        )
    return client_limit


class SqlSignInLimiter:
    """The failures as rows of the review database, shared by every process using it.

    Each check reads at most a key's limit of rows through an index; each failure also
    deletes every failure that has left the window, so the table holds one window's worth
    of failures at most. ``max_client_failures`` None: :data:`ADDRESS_LIMIT_FACTOR` ×
    ``max_failures``.
    """

    def __init__(
        self,
        database: ReviewDatabase,
        clock: Clock,
        *,
        max_failures: int = 5,
        max_client_failures: int | None = None,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        self.max_client_failures = _client_limit(max_failures, max_client_failures, window)
        self.database = database
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self._limits = (max_failures, self.max_client_failures)

    def check(self, username: str, client: str) -> None:
        """Return if an attempt may go ahead; SignInLimitedError (429) with the wait if not."""
        now = self.clock.now()
        table = _schema.sign_in_failures
        waits = [timedelta(0)]
        with self.database.begin("check the sign-in limits") as connection:
            for key, limit in self._limited(username, client):
                recent = connection.execute(
                    sa.select(table.c.at)
                    .where(table.c.key == key, table.c.at > utc(now - self.window))
                    .order_by(table.c.at.desc())
                    .limit(limit)
                ).scalars()
                times = [as_utc(at) for at in recent]
                if len(times) == limit:
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

    def _limited(self, username: str, client: str) -> list[tuple[str, int]]:
        """The username's and the address's keys, each with its limit of failures."""
        return list(zip(_keys(username, client), self._limits, strict=True))


class InMemorySignInLimiter:
    """The failures in this process's memory, bounded: each key keeps at most its limit of
    times, and at most ``max_keys`` keys are kept (the least recently failed go first; under
    a flood of addresses that bound wins over remembering every one).
    ``max_client_failures`` None: :data:`ADDRESS_LIMIT_FACTOR` × ``max_failures``."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = 5,
        max_client_failures: int | None = None,
        window: timedelta = timedelta(minutes=15),
        max_keys: int = 100_000,
    ) -> None:
        self.max_client_failures = _client_limit(max_failures, max_client_failures, window)
        if max_keys < 2:
            raise InputError(f"sign-in limiter needs max_keys ≥ 2, got {max_keys}")
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self._limits = (max_failures, self.max_client_failures)
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, username: str, client: str) -> None:
        """Return if an attempt may go ahead; SignInLimitedError (429) with the wait if not."""
        now = self.clock.now()
        with self._lock:
            waits = [self._wait(key, limit, now) for key, limit in self._limited(username, client)]
        wait = max(waits)
        if wait > timedelta(0):
            raise SignInLimitedError(retry_after_s=max(1.0, wait.total_seconds()))

    def failed(self, username: str, client: str) -> None:
        """Count a failed attempt against the username and the address."""
        now = self.clock.now()
        with self._lock:
            for key, limit in self._limited(username, client):
                times = self._failures.pop(key, None) or deque(maxlen=limit)
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

    def _limited(self, username: str, client: str) -> list[tuple[str, int]]:
        """The username's and the address's keys, each with its limit of failures."""
        return list(zip(_keys(username, client), self._limits, strict=True))

    def _wait(self, key: str, limit: int, now: datetime) -> timedelta:
        times = self._failures.get(key)
        if times is None:
            return timedelta(0)
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return timedelta(0)
        if len(times) < limit:
            return timedelta(0)
        return times[0] + self.window - now


def _keys(username: str, client: str) -> tuple[str, str]:
    return (f"user:{username.strip().lower()}", f"client:{client}")
