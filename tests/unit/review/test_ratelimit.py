"""The sign-in rate limiter: a sliding window per username and per address, bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fraudops.clock import ManualClock
from fraudops.errors import SignInLimitedError
from fraudops.review.ratelimit import SignInLimiter

WINDOW = timedelta(minutes=10)


@pytest.fixture
def limiter(clock: ManualClock) -> SignInLimiter:
    """Three failures within ten minutes block a key."""
    return SignInLimiter(clock, max_failures=3, window=WINDOW, max_keys=10)


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


def test_an_address_is_blocked_after_failures_for_any_usernames(limiter: SignInLimiter) -> None:
    """Three failures from one address, for three names, block that address for everyone."""
    for name in ("ann", "bob", "cy"):
        limiter.failed(name, "10.0.0.1")
    with pytest.raises(SignInLimitedError):
        limiter.check("dan", "10.0.0.1")


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
    limiter.failed("bob", "10.0.0.1")
    with pytest.raises(SignInLimitedError):
        limiter.check("cy", "10.0.0.1")


def test_memory_is_bounded_by_max_keys(limiter: SignInLimiter) -> None:
    """A flood of distinct names and addresses keeps at most max_keys keys."""
    for n in range(100):
        fail(limiter, f"user-{n}", f"10.0.{n}.1", 5)
    assert 10 == limiter.tracked_keys()
