"""The sign-in rate limiters: a sliding window per username and per address, each with its
own limit, the same in memory and in the review database (SQLite and PostgreSQL); memory
bounded, rows shared."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from fraudops.clock import ManualClock
from fraudops.errors import InputError, SignInLimitedError
from fraudops.review import _schema
from fraudops.review.database import ReviewDatabase
from fraudops.review.ratelimit import InMemorySignInLimiter, SignInLimiter, SqlSignInLimiter
from tests.services import postgres_schema_url

WINDOW = timedelta(minutes=10)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def limiter(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[SignInLimiter]:
    """Three failures within ten minutes block a username, six an address: in memory, or
    in each database."""
    if request.param == "memory":
        yield InMemorySignInLimiter(
            clock, max_failures=3, max_client_failures=6, window=WINDOW, max_keys=10
        )
        return
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path}/review.db"
        else:
            url = stack.enter_context(postgres_schema_url())
        database = ReviewDatabase(url)
        stack.callback(database.close)
        yield SqlSignInLimiter(
            database, clock, max_failures=3, max_client_failures=6, window=WINDOW
        )


def fail(limiter: SignInLimiter, username: str, client: str, times: int) -> None:
    """Record ``times`` failed attempts."""
    for _ in range(times):
        limiter.failed(username, client)


def test_a_username_is_blocked_after_its_failures_from_any_address(
    limiter: SignInLimiter,
) -> None:
    """Three failures for ann block ann from every address, with the wait until unblocked."""
    for n in range(3):
        limiter.failed("ann", f"10.0.0.{n}")
    with pytest.raises(SignInLimitedError) as raised:
        limiter.check("ann", "10.9.9.9")
    assert 600.0 == raised.value.retry_after_s
    limiter.check("bob", "10.9.9.9")


def test_an_address_is_blocked_after_its_own_limit_of_failures_for_any_usernames(
    limiter: SignInLimiter,
) -> None:
    """Six failures from one address, one for each of six names (password spraying), block
    that address for everyone; five do not."""
    names = ("ann", "bob", "cy", "dan", "eve", "fay")
    for name in names[:5]:
        limiter.failed(name, "10.0.0.1")
    limiter.check("gus", "10.0.0.1")
    limiter.failed(names[5], "10.0.0.1")
    with pytest.raises(SignInLimitedError):
        limiter.check("gus", "10.0.0.1")


def test_one_users_failures_do_not_block_colleagues_at_the_same_address(
    limiter: SignInLimiter,
) -> None:
    """bob failing three times from an office's one address blocks bob, not lea there."""
    fail(limiter, "bob", "10.0.0.1", 3)
    with pytest.raises(SignInLimitedError):
        limiter.check("bob", "10.0.0.1")
    limiter.check("lea", "10.0.0.1")


def test_an_address_may_fail_five_times_as_often_as_a_username_by_default(
    clock: ManualClock,
) -> None:
    """Unless told, an address's limit is five times a username's: 15 for 3."""
    limiter = InMemorySignInLimiter(clock, max_failures=3, window=WINDOW)
    for n in range(14):
        limiter.failed(f"user-{n}", "10.0.0.1")
    limiter.check("lea", "10.0.0.1")
    limiter.failed("user-14", "10.0.0.1")
    with pytest.raises(SignInLimitedError):
        limiter.check("lea", "10.0.0.1")


@pytest.mark.parametrize(("user_limit", "address_limit"), [(0, 5), (3, 0)])
def test_a_limit_below_one_is_refused(
    clock: ManualClock, user_limit: int, address_limit: int
) -> None:
    """A limiter that would block before any failure is a configuration mistake."""
    with pytest.raises(InputError, match="max_failures ≥ 1, max_client_failures ≥ 1"):
        InMemorySignInLimiter(
            clock, max_failures=user_limit, max_client_failures=address_limit, window=WINDOW
        )


def test_the_window_slides(limiter: SignInLimiter, clock: ManualClock) -> None:
    """A key is free again once its oldest failure is older than the window."""
    limiter.failed("ann", "a")
    clock.advance(timedelta(minutes=4))
    fail(limiter, "ann", "b", 2)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(SignInLimitedError) as raised:
        limiter.check("ann", "c")
    assert 60.0 == raised.value.retry_after_s
    clock.advance(timedelta(minutes=1))
    limiter.check("ann", "c")


def test_a_good_sign_in_clears_the_username_but_not_the_address(limiter: SignInLimiter) -> None:
    """After success, ann's failures are forgotten; the address keeps its count."""
    fail(limiter, "ann", "10.0.0.1", 2)
    limiter.succeeded("ann", "10.0.0.1")
    limiter.failed("ann", "10.0.0.2")
    limiter.check("ann", "10.0.0.2")
    fail(limiter, "bob", "10.0.0.1", 2)
    fail(limiter, "cy", "10.0.0.1", 2)
    with pytest.raises(SignInLimitedError):
        limiter.check("dan", "10.0.0.1")


def test_memory_is_bounded_by_max_keys(clock: ManualClock) -> None:
    """A flood of distinct names and addresses keeps at most max_keys keys."""
    limiter = InMemorySignInLimiter(clock, max_failures=3, window=WINDOW, max_keys=10)
    for n in range(100):
        fail(limiter, f"user-{n}", f"10.0.{n}.1", 5)
    assert 10 == limiter.tracked_keys()


def test_replicas_on_one_database_share_the_limit(
    database: ReviewDatabase, clock: ManualClock
) -> None:
    """Failures counted by one process's limiter block the next attempt at another's."""
    first = SqlSignInLimiter(database, clock, max_failures=3, window=WINDOW)
    second = SqlSignInLimiter(ReviewDatabase(database.url), clock, max_failures=3, window=WINDOW)
    fail(first, "ann", "10.0.0.1", 2)
    fail(second, "ann", "10.0.0.2", 1)
    with pytest.raises(SignInLimitedError):
        first.check("ann", "10.0.0.3")
    second.database.close()


def test_the_table_keeps_only_failures_inside_the_window(
    database: ReviewDatabase, clock: ManualClock
) -> None:
    """Each failure deletes those older than the window, so the rows stay bounded."""
    limiter = SqlSignInLimiter(database, clock, max_failures=3, window=WINDOW)
    for n in range(20):
        limiter.failed(f"user-{n}", f"10.0.{n}.1")
    clock.advance(WINDOW)
    limiter.failed("late", "10.1.1.1")
    with database.begin("count") as connection:
        keys = connection.execute(sa.select(_schema.sign_in_failures.c.key)).scalars().all()
    assert ["client:10.1.1.1", "user:late"] == sorted(keys)
