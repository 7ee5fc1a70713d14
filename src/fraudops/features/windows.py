"""Pure window functions over time-sorted event lists, shared by the online engine.

Timestamps are integer microseconds since the epoch (UTC). An entity's events are kept
sorted by ``(ts, transaction_id)``, so a list's content and order depend only on the set
of events seen, never on the order they arrived in. Windows are open on the left and
closed on the right; "history" excludes every event at ``t`` itself.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3_600 * MICROS_PER_SECOND
MICROS_PER_DAY = 24 * MICROS_PER_HOUR
_EPOCH_WEEKDAY = 3
"""1970-01-01 was a Thursday (Monday = 0)."""
_SATURDAY = 5
_LAST_NIGHT_HOUR = 6
NAN = math.nan


def insertion_index(ts: Sequence[int], ids: Sequence[str], t: int, transaction_id: str) -> int:
    """Where an event goes so the lists stay sorted by ``(ts, transaction_id)``."""
    index = bisect_right(ts, t)
    while index > 0 and ts[index - 1] == t and ids[index - 1] > transaction_id:
        index -= 1
    return index


def holds_at(
    ts: Sequence[int], ids: Sequence[str], index: int, t: int, transaction_id: str
) -> bool:
    """Whether the event ``insertion_index`` placed at ``index`` is there already, just before."""
    return index > 0 and ts[index - 1] == t and ids[index - 1] == transaction_id


def expired_count(ts: Sequence[int], t: int, horizon_us: int) -> int:
    """How many leading events no window at ``t`` or later can reach (``ts ≤ t − horizon``)."""
    return bisect_right(ts, t - horizon_us)


def history_bounds(ts: Sequence[int], t: int, window_us: int | None) -> tuple[int, int]:
    """Index range ``[lo, hi)`` of the events with ``t − w < ts < t`` (no lower bound if None)."""
    hi = bisect_left(ts, t)
    lo = 0 if window_us is None else bisect_right(ts, t - window_us, 0, hi)
    return lo, hi


def delayed_bounds(ts: Sequence[int], t: int, window_us: int, delay_us: int) -> tuple[int, int]:
    """Index range of the events with ``t − d − w < ts ≤ t − d`` and ``ts < t``."""
    hi = bisect_right(ts, t - delay_us) if delay_us > 0 else bisect_left(ts, t)
    lo = bisect_right(ts, t - delay_us - window_us, 0, hi)
    return lo, hi


def delayed_includes_current(delay_us: int) -> bool:
    """Whether the current transaction falls inside its own delayed window."""
    return delay_us == 0


def is_weekend(t: int) -> float:
    """1.0 when ``t`` falls on a Saturday or Sunday (UTC)."""
    weekday = (t // MICROS_PER_DAY + _EPOCH_WEEKDAY) % 7
    return 1.0 if weekday >= _SATURDAY else 0.0


def is_night(t: int) -> float:
    """1.0 when ``t``'s UTC hour is 6 or earlier."""
    return 1.0 if (t // MICROS_PER_HOUR) % 24 <= _LAST_NIGHT_HOUR else 0.0


def count_with_current(lo: int, hi: int) -> float:
    """The number of history events in ``[lo, hi)`` plus the current one."""
    return float(hi - lo + 1)


def mean_with_current(amounts: Sequence[float], lo: int, hi: int, amount: float) -> float:
    """The mean amount of history ``[lo, hi)`` and the current transaction."""
    return (sum(amounts[lo:hi]) + amount) / (hi - lo + 1)


def fraud_rate(frauds: int, count: int) -> float:
    """Share of fraud in a window, 0.0 for an empty window (the handbook's convention)."""
    return frauds / count if count else 0.0


def amount_to_mean(amounts: Sequence[float], lo: int, hi: int, amount: float) -> float:
    """``amount`` over the history mean; NaN without history or with a zero mean."""
    if hi <= lo:
        return NAN
    mean = sum(amounts[lo:hi]) / (hi - lo)
    return amount / mean if mean != 0.0 else NAN


def amount_zscore(amounts: Sequence[float], lo: int, hi: int, amount: float) -> float:
    """``(amount − mean) / std_pop`` over history; NaN below 2 events or with all equal."""
    n = hi - lo
    if n < 2:
        return NAN
    history = amounts[lo:hi]
    # Equal amounts must give exactly "no spread" in both engines; rounding could leave
    # a tiny non-zero variance and an enormous z-score, so test equality directly.
    if min(history) == max(history):
        return NAN
    mean = sum(history) / n
    # Two passes (deviations from the mean) keep nearly-equal amounts accurate.
    deviations = [value - mean for value in history]
    variance = sum(map(operator.mul, deviations, deviations)) / n
    if variance <= 0.0:  # spreads below ~1e-160 underflow
        return NAN
    return (amount - mean) / math.sqrt(variance)


def seconds_since(last_ts: int | None, t: int) -> float:
    """Seconds from the latest history event to ``t``; NaN without history."""
    return NAN if last_ts is None else (t - last_ts) / MICROS_PER_SECOND


def distance_to_mean(
    xs: Sequence[float],
    ys: Sequence[float],
    located: Sequence[int],
    lo: int,
    hi: int,
    x: float,
    y: float,
) -> float:
    """Distance from ``(x, y)`` to the mean history location; NaN if either is unknown.

    ``located[i]`` is 1 when event i has a location; events without one hold 0.0
    coordinates and are left out of the mean.
    """
    if math.isnan(x) or math.isnan(y):
        return NAN
    count = sum(located[lo:hi])
    if not count:
        return NAN
    dx = x - sum(xs[lo:hi]) / count
    dy = y - sum(ys[lo:hi]) / count
    return snap_distance(math.sqrt(dx * dx + dy * dy))


DISTANCE_GRID = 1_000_000
"""Distances are snapped to 1e-6 units (a millimetre when units are kilometres)."""


def snap_distance(distance: float) -> float:
    """``distance`` on the grid, so "same place" is exactly 0.0 in both engines.

    A card at its usual terminal has distance 0 up to floating-point noise, and the two
    engines' noise differs (1e-14 vs 8e-14). A tree splits 0 from any positive value
    (LightGBM's zero threshold is 1e-35), so noise alone would flip the branch and the
    online score would differ from the one training saw.
    """
    return math.floor(distance * DISTANCE_GRID + 0.5) / DISTANCE_GRID


def peak_to_mean(amounts: Sequence[float], peak_lo: int, mean_lo: int, hi: int) -> float:
    """The largest amount of ``[peak_lo, hi)`` over the mean of ``[mean_lo, hi)``.

    NaN when either slice is empty or the mean is zero.
    """
    if hi <= peak_lo or hi <= mean_lo:
        return NAN
    mean = sum(amounts[mean_lo:hi]) / (hi - mean_lo)
    return max(amounts[peak_lo:hi]) / mean if mean != 0.0 else NAN


def first_fraud_index(is_fraud: Sequence[bool], lo: int, hi: int) -> int | None:
    """The index of the earliest fraud in ``[lo, hi)``, None when there is none."""
    for index in range(lo, hi):
        if is_fraud[index]:
            return index
    return None
