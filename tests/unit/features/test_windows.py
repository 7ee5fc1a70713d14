"""Property tests of the pure window functions the online engine is built on."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fraudops.features import windows

HOUR = windows.MICROS_PER_HOUR
DAY = windows.MICROS_PER_DAY

times = st.integers(min_value=0, max_value=40 * DAY)
# Few distinct values so that ties are common.
tied_times = st.integers(min_value=0, max_value=20).map(lambda n: n * HOUR)
event_lists = st.lists(st.tuples(tied_times, st.integers(0, 10_000)), max_size=40, unique=True)
widths = st.sampled_from([HOUR, DAY, 7 * DAY, 30 * DAY, 1, 5 * HOUR + 1])
amounts = st.integers(min_value=0, max_value=1_000_000).map(lambda cents: cents / 100)


def _build(events: list[tuple[int, int]]) -> tuple[list[int], list[str]]:
    ts: list[int] = []
    ids: list[str] = []
    for t, n in events:
        tx_id = f"tx-{n:05d}"
        index = windows.insertion_index(ts, ids, t, tx_id)
        ts.insert(index, t)
        ids.insert(index, tx_id)
    return ts, ids


@given(event_lists, st.randoms(use_true_random=False))
def test_state_does_not_depend_on_arrival_order(
    events: list[tuple[int, int]], rng: random.Random
) -> None:
    """Events inserted in any order give the same lists, so the same features."""
    shuffled = list(events)
    rng.shuffle(shuffled)
    assert _build(sorted(events)) == _build(shuffled)


@given(event_lists, tied_times, widths)
def test_history_bounds_match_the_definition(
    events: list[tuple[int, int]], t: int, window: int
) -> None:
    """The history slice holds exactly the events with t − w < ts < t."""
    ts, _ = _build(events)
    lo, hi = windows.history_bounds(ts, t, window)
    expected = sorted(x for x in ts if t - window < x < t)
    assert expected == ts[lo:hi]


@given(event_lists, tied_times)
def test_unbounded_history_excludes_peers(events: list[tuple[int, int]], t: int) -> None:
    """Without a window, history is every event strictly before t."""
    ts, _ = _build(events)
    lo, hi = windows.history_bounds(ts, t, None)
    assert [x for x in ts if x < t] == ts[lo:hi]


@given(event_lists, tied_times, widths, st.sampled_from([0, DAY, 7 * DAY]))
def test_delayed_bounds_match_the_definition(
    events: list[tuple[int, int]], t: int, window: int, delay: int
) -> None:
    """The delayed slice holds the events with t − d − w < ts ≤ t − d and ts < t."""
    ts, _ = _build(events)
    lo, hi = windows.delayed_bounds(ts, t, window, delay)
    expected = [x for x in ts if t - delay - window < x <= t - delay and x < t]
    assert expected == ts[lo:hi]


@given(times, widths)
def test_an_event_exactly_one_window_back_is_out(t: int, window: int) -> None:
    """Windows are open on the left: ts = t − w is outside, t − w + 1 µs inside."""
    ts = [t - window, t - window + 1]
    lo, hi = windows.history_bounds(ts, t, window)
    expected = [t - window + 1] if window > 1 else []
    assert expected == ts[lo:hi]


@given(times, widths, st.sampled_from([DAY, 7 * DAY]))
def test_delayed_window_edges(t: int, window: int, delay: int) -> None:
    """(t − d − w, t − d]: the right edge t − d is in, the left edge out."""
    edge_ts = [t - delay - window, t - delay - window + 1, t - delay, t - delay + 1]
    lo, hi = windows.delayed_bounds(edge_ts, t, window, delay)
    assert [t - delay - window + 1, t - delay] == edge_ts[lo:hi]


@given(times, amounts, st.floats(0, 100), st.floats(0, 100))
def test_empty_history(t: int, amount: float, x: float, y: float) -> None:
    """With no history: counts are 1, the mean is the amount, the rest unknown."""
    expected = 1.0
    assert expected == windows.count_with_current(0, 0)
    assert amount == windows.mean_with_current([], 0, 0, amount)
    assert math.isnan(windows.amount_to_mean([], 0, 0, amount))
    assert math.isnan(windows.amount_zscore([], 0, 0, amount))
    assert math.isnan(windows.seconds_since(None, t))
    assert math.isnan(windows.distance_to_mean([], [], [], 0, 0, x, y))
    expected = 0.0
    assert expected == windows.fraud_rate(0, 0)


@given(st.lists(amounts, min_size=2, max_size=30), amounts)
def test_zscore_matches_numpy(history: list[float], amount: float) -> None:
    """The z-score is (amount − mean) / population std, NaN without spread."""
    actual = windows.amount_zscore(history, 0, len(history), amount)
    values = np.array(history)
    if values.min() == values.max():
        assert math.isnan(actual)
    else:
        expected = (amount - values.mean()) / values.std()
        assert math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9)


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100), st.booleans()), max_size=20))
def test_distance_uses_only_located_history(rows: list[tuple[float, float, bool]]) -> None:
    """History without a location is left out of the mean location."""
    xs = [x if located else 0.0 for x, _, located in rows]
    ys = [y if located else 0.0 for _, y, located in rows]
    flags = [int(located) for _, _, located in rows]
    actual = windows.distance_to_mean(xs, ys, flags, 0, len(rows), 50.0, 50.0)
    kept = [(x, y) for x, y, located in rows if located]
    if not kept:
        assert math.isnan(actual)
    else:
        mean_x = sum(x for x, _ in kept) / len(kept)
        mean_y = sum(y for _, y in kept) / len(kept)
        expected = math.dist((50.0, 50.0), (mean_x, mean_y))
        assert math.isclose(expected, actual, abs_tol=0.5 / windows.DISTANCE_GRID + 1e-12)


@given(st.lists(st.floats(0, 100), min_size=1, max_size=20))
def test_distance_at_the_usual_place_is_exactly_zero(coordinates: list[float]) -> None:
    """A card at the one location it always uses is at distance 0.0, not float noise."""
    here = coordinates[0]
    same = [here] * len(coordinates)
    actual = windows.distance_to_mean(same, same, [1] * len(same), 0, len(same), here, here)
    assert actual == 0.0


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)))
def test_calendar_flags_follow_utc(moment: datetime) -> None:
    """Weekend is Saturday/Sunday and night is hour ≤ 6, both in UTC."""
    aware = moment.replace(tzinfo=UTC)
    t = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert (1.0 if aware.weekday() >= 5 else 0.0) == windows.is_weekend(t)
    assert (1.0 if aware.hour <= 6 else 0.0) == windows.is_night(t)


@given(st.lists(amounts, max_size=30), st.data())
def test_peak_to_mean_matches_its_definition(history: list[float], data: st.DataObject) -> None:
    """The peak of the recent slice over the mean of the long one; NaN if either is empty."""
    hi = len(history)
    peak_lo = data.draw(st.integers(0, hi))
    mean_lo = data.draw(st.integers(0, peak_lo))
    actual = windows.peak_to_mean(history, peak_lo, mean_lo, hi)
    recent, long = history[peak_lo:hi], history[mean_lo:hi]
    if not recent or not any(long):
        assert math.isnan(actual)
    else:
        expected = max(recent) / (sum(long) / len(long))
        assert math.isclose(expected, actual, rel_tol=1e-12)


@given(st.lists(amounts, min_size=1, max_size=30), st.floats(1.5, 10))
def test_a_larger_recent_peak_raises_peak_to_mean(history: list[float], factor: float) -> None:
    """Multiplying the newest amount can only raise the recent peak relative to the mean."""
    raised = [*history[:-1], history[-1] * factor]
    n = len(history)
    before = windows.peak_to_mean(history, n - 1, 0, n)
    after = windows.peak_to_mean(raised, n - 1, 0, n)
    if not math.isnan(before):
        assert before <= after * (1 + 1e-12)


@given(st.lists(st.booleans(), max_size=30), st.data())
def test_first_fraud_index_is_the_earliest_fraud_in_the_slice(
    is_fraud: list[bool], data: st.DataObject
) -> None:
    """The first fraud at or after lo and before hi; None when the slice holds none."""
    lo = data.draw(st.integers(0, len(is_fraud)))
    hi = data.draw(st.integers(lo, len(is_fraud)))
    expected = next((i for i in range(lo, hi) if is_fraud[i]), None)
    assert expected == windows.first_fraud_index(is_fraud, lo, hi)
