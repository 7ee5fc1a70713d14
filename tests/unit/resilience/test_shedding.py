"""The load shedder: admits up to its limit, sheds the rest at once and says so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudops.errors import ConfigError
from fraudops.resilience import LoadShedder


class ShedLog:
    """Collects the name reported for each shed request."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str) -> None:
        self.names.append(name)


def test_admits_up_to_the_limit_and_sheds_above() -> None:
    """The first ``limit`` acquisitions succeed; the rest are refused and each reported."""
    shed = ShedLog()
    shedder = LoadShedder("decide", 3, on_shed=shed)
    admitted = [shedder.try_acquire() for _ in range(5)]
    assert [True, True, True, False, False] == admitted
    assert (3, ["decide", "decide"]) == (shedder.in_flight, shed.names)


def test_release_frees_a_slot() -> None:
    """After a release, one more unit of work is admitted."""
    shedder = LoadShedder("decide", 1)
    first, refused = shedder.try_acquire(), shedder.try_acquire()
    shedder.release()
    assert (True, False, True) == (first, refused, shedder.try_acquire())


def test_slot_releases_only_what_it_admitted() -> None:
    """An admitted slot is released on exit; a refused one leaves the count alone."""
    shedder = LoadShedder("decide", 1)
    with shedder.slot() as outer:
        with shedder.slot() as inner:
            during = shedder.in_flight
        after_refused = shedder.in_flight
    assert (True, False, 1, 1, 0) == (outer, inner, during, after_refused, shedder.in_flight)


def test_slot_releases_when_the_work_fails() -> None:
    """A failure inside the slot still gives the slot back."""
    shedder = LoadShedder("decide", 1)
    with pytest.raises(RuntimeError, match="boom"), shedder.slot():
        raise RuntimeError("boom")
    assert 0 == shedder.in_flight


def test_release_without_acquire_is_an_error() -> None:
    """Releasing more than was admitted would raise the bound, so it is refused."""
    shedder = LoadShedder("decide", 2)
    with pytest.raises(RuntimeError, match="released more than it admitted"):
        shedder.release()


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_a_config_error(limit: int) -> None:
    """A shedder that could admit nothing is a configuration mistake."""
    with pytest.raises(ConfigError, match="limit"):
        LoadShedder("decide", limit)


@given(
    limit=st.integers(min_value=1, max_value=5),
    ops=st.lists(st.sampled_from(["acquire", "release"]), max_size=60),
)
def test_in_flight_never_exceeds_the_limit(limit: int, ops: list[str]) -> None:
    """Under any acquire/release sequence the count stays within [0, limit] and sheds add up."""
    shed = ShedLog()
    shedder = LoadShedder("decide", limit, on_shed=shed)
    held = refused = 0
    for op in ops:
        if op == "acquire":
            if shedder.try_acquire():
                held += 1
            else:
                refused += 1
        elif held > 0:
            shedder.release()
            held -= 1
        assert 0 <= shedder.in_flight <= limit
        assert held == shedder.in_flight
    assert refused == len(shed.names)


def test_pressure_sheds_below_the_in_flight_bound() -> None:
    """While its pressure signal is on, the shedder sheds even with room left, and says so."""
    shed: list[str] = []
    pressed = [True]
    shedder = LoadShedder("d", 10, on_shed=shed.append, pressure=lambda: pressed[0])
    first = shedder.try_acquire()
    pressed[0] = False
    second = shedder.try_acquire()
    assert (False, True, ["d"], 1) == (first, second, shed, shedder.in_flight)


def test_loop_lag_smooths_and_trips_over_its_limit() -> None:
    """One late wake-up does not trip it; sustained lateness does, and recovery clears it."""
    from fraudops.resilience import LoopLag

    lag = LoopLag(limit_s=0.010, smoothing=0.5)
    lag.observe(0.015)
    after_one = lag.overloaded()
    for _ in range(5):
        lag.observe(0.030)
    sustained = lag.overloaded()
    for _ in range(10):
        lag.observe(0.0)
    assert (False, True, False) == (after_one, sustained, lag.overloaded())


def test_loop_lag_measures_a_blocked_loop() -> None:
    """A loop blocked for 50 ms shows up as lag over a 10 ms limit."""
    import asyncio
    import time

    from fraudops.resilience import LoopLag

    lag = LoopLag(limit_s=0.010, interval_s=0.002, smoothing=1.0)

    async def block_once() -> bool:
        task = asyncio.create_task(lag.run())
        await asyncio.sleep(0.01)
        time.sleep(0.05)  # the loop is blocked: the monitor wakes late
        await asyncio.sleep(0.001)
        overloaded = lag.overloaded()
        task.cancel()
        return overloaded

    assert asyncio.run(block_once())
