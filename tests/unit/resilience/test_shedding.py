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
