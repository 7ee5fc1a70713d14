"""The online engine: features for one transaction from per-entity state, then update.

Each feature of the definition is compiled once into a small function of the event and
its card and terminal records; ``compute_and_update`` runs them before the transaction
joins the state, so a transaction is never in its own history. Peers sharing a timestamp
are excluded by the window functions, whatever order they arrive in.

Beside the features the engine keeps one *signal* no model is trained on: how long ago a
fraud on the card was confirmed (``DAYS_SINCE_CARD_FRAUD``). Labels reach the card as well as
the terminal, so an analyst's verdict marks the card at once, and the rules can decline the
card's next payments without waiting for the model's next training.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from fraudops.features import windows
from fraudops.features.definition import Aggregate, Entity, Feature, FeatureDefinition, Kind
from fraudops.features.state import (
    AsyncReads,
    CardState,
    FeatureState,
    StateWrite,
    TerminalState,
    TxRef,
)
from fraudops.types import Label, Transaction

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MICROS_PER_DAY = 86_400_000_000

DAYS_SINCE_CARD_FRAUD = "days_since_card_fraud_confirmed"
"""The signal: days since the card's latest confirmed fraud became known; infinite if none."""

SIGNALS = (DAYS_SINCE_CARD_FRAUD,)
"""The names rules may test beside the definition's features."""


class Served(NamedTuple):
    """What the engine serves for one transaction: its features and its signals."""

    values: np.ndarray
    """The definition's features, in its order (float64)."""
    signals: dict[str, float]
    seen_before: bool = False
    """The state already held this transaction: it was served before and is not counted
    again (see ``OnlineFeatures.compute``)."""
    conflict: tuple[str, ...] = ()
    """The fields in which this transaction differs from the one first seen under its id
    (empty: no conflict); a conflicting one is not served."""


def to_micros(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    return (moment - _EPOCH) // _MICROSECOND


@dataclass(slots=True)
class _Event:
    """One transaction being scored, with its entities' records and cached slices."""

    t: int
    amount: float
    terminal_id: str
    x: float
    y: float
    card: CardState
    terminal: TerminalState
    card_slices: dict[int | None, tuple[int, int]] = field(default_factory=dict)
    delayed_slices: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)

    def card_history(self, window: int | None) -> tuple[int, int]:
        bounds = self.card_slices.get(window)
        if bounds is None:
            bounds = windows.history_bounds(self.card.ts, self.t, window)
            self.card_slices[window] = bounds
        return bounds

    def terminal_history(self, window: int) -> tuple[int, int]:
        return windows.history_bounds(self.terminal.ts, self.t, window)

    def terminal_delayed(self, window: int, delay: int) -> tuple[int, int]:
        bounds = self.delayed_slices.get((window, delay))
        if bounds is None:
            bounds = windows.delayed_bounds(self.terminal.ts, self.t, window, delay)
            self.delayed_slices[window, delay] = bounds
        return bounds


FeatureFunction = Callable[[_Event], float]


def _window(feature: Feature) -> int:
    window = feature.window_us
    if window is None:  # pragma: no cover - the definition validates this
        raise ValueError(f"feature {feature.name!r} needs a window")
    return window


def _amount(feature: Feature) -> FeatureFunction:
    return lambda e: e.amount


def _weekend(feature: Feature) -> FeatureFunction:
    return lambda e: windows.is_weekend(e.t)


def _night(feature: Feature) -> FeatureFunction:
    return lambda e: windows.is_night(e.t)


def _card_count(feature: Feature) -> FeatureFunction:
    window = _window(feature)
    return lambda e: windows.count_with_current(*e.card_history(window))


def _card_mean(feature: Feature) -> FeatureFunction:
    window = _window(feature)
    return lambda e: windows.mean_with_current(e.card.amounts, *e.card_history(window), e.amount)


def _terminal_count(feature: Feature) -> FeatureFunction:
    window = _window(feature)
    return lambda e: windows.count_with_current(*e.terminal_history(window))


def _delayed_count(feature: Feature) -> FeatureFunction:
    window, delay = _window(feature), feature.delay_us
    extra = 1 if windows.delayed_includes_current(delay) else 0

    def compute(e: _Event) -> float:
        lo, hi = e.terminal_delayed(window, delay)
        return float(hi - lo + extra)

    return compute


def _delayed_fraud_rate(feature: Feature) -> FeatureFunction:
    window, delay = _window(feature), feature.delay_us
    # The current transaction's label cannot be known yet: it only adds to the count.
    extra = 1 if windows.delayed_includes_current(delay) else 0

    def compute(e: _Event) -> float:
        lo, hi = e.terminal_delayed(window, delay)
        return windows.fraud_rate(sum(e.terminal.is_fraud[lo:hi]), hi - lo + extra)

    return compute


def _amount_to_mean(feature: Feature) -> FeatureFunction:
    window = _window(feature)
    return lambda e: windows.amount_to_mean(e.card.amounts, *e.card_history(window), e.amount)


def _amount_zscore(feature: Feature) -> FeatureFunction:
    window = _window(feature)
    return lambda e: windows.amount_zscore(e.card.amounts, *e.card_history(window), e.amount)


def _seconds_since_last(feature: Feature) -> FeatureFunction:
    window = feature.window_us

    def compute(e: _Event) -> float:
        lo, hi = e.card_history(window)
        if hi > lo:
            return windows.seconds_since(e.card.ts[hi - 1], e.t)
        # Evicted transactions are older than any kept one, so the newest evicted
        # time is the previous transaction when the lists hold no history.
        expired = e.card.last_expired_ts if window is None else None
        return windows.seconds_since(expired, e.t)

    return compute


def _is_new_terminal(feature: Feature) -> FeatureFunction:
    window = _window(feature)

    def compute(e: _Event) -> float:
        lo, hi = e.card_history(window)
        return 0.0 if e.terminal_id in e.card.terminal_ids[lo:hi] else 1.0

    return compute


def _distance(feature: Feature) -> FeatureFunction:
    window = _window(feature)

    def compute(e: _Event) -> float:
        lo, hi = e.card_history(window)
        card = e.card
        return windows.distance_to_mean(card.xs, card.ys, card.located, lo, hi, e.x, e.y)

    return compute


def _peak_to_mean(feature: Feature) -> FeatureFunction:
    window, baseline = _window(feature), feature.baseline_us

    def compute(e: _Event) -> float:
        peak_lo, hi = e.card_history(window)
        mean_lo, _ = e.card_history(baseline)
        return windows.peak_to_mean(e.card.amounts, peak_lo, mean_lo, hi)

    return compute


def _seconds_since_first_fraud(feature: Feature) -> FeatureFunction:
    window, delay = _window(feature), feature.delay_us

    def compute(e: _Event) -> float:
        lo, hi = e.terminal_delayed(window, delay)
        first = windows.first_fraud_index(e.terminal.is_fraud, lo, hi)
        return windows.seconds_since(None if first is None else e.terminal.ts[first], e.t)

    return compute


COMPILERS: dict[tuple[Kind, Entity, Aggregate], Callable[[Feature], FeatureFunction]] = {
    (Kind.POINT, Entity.TRANSACTION, Aggregate.AMOUNT): _amount,
    (Kind.POINT, Entity.TRANSACTION, Aggregate.IS_WEEKEND): _weekend,
    (Kind.POINT, Entity.TRANSACTION, Aggregate.IS_NIGHT): _night,
    (Kind.WINDOW, Entity.CARD, Aggregate.COUNT): _card_count,
    (Kind.WINDOW, Entity.CARD, Aggregate.MEAN_AMOUNT): _card_mean,
    (Kind.WINDOW, Entity.TERMINAL, Aggregate.COUNT): _terminal_count,
    (Kind.DELAYED, Entity.TERMINAL, Aggregate.COUNT): _delayed_count,
    (Kind.DELAYED, Entity.TERMINAL, Aggregate.FRAUD_RATE): _delayed_fraud_rate,
    (Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_TO_MEAN): _amount_to_mean,
    (Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_ZSCORE): _amount_zscore,
    (Kind.HISTORY, Entity.CARD, Aggregate.SECONDS_SINCE_LAST): _seconds_since_last,
    (Kind.HISTORY, Entity.CARD, Aggregate.IS_NEW_TERMINAL): _is_new_terminal,
    (Kind.HISTORY, Entity.CARD, Aggregate.DISTANCE_TO_MEAN_LOCATION): _distance,
    (Kind.HISTORY, Entity.CARD, Aggregate.PEAK_TO_MEAN): _peak_to_mean,
    (
        Kind.DELAYED,
        Entity.TERMINAL,
        Aggregate.SECONDS_SINCE_FIRST_FRAUD,
    ): _seconds_since_first_fraud,
}
"""How the online engine computes each supported (kind, entity, aggregate)."""


class LabelEffect(StrEnum):
    """What one label did to the online state."""

    APPLIED = "applied"
    """Its terminal's risk, or its card's confirmed fraud, changed."""
    UNCHANGED = "unchanged"
    """The state already held this label, or one known later: a repeat changes nothing."""
    UNKNOWN_TRANSACTION = "unknown_transaction"
    """No transaction under its id is in the state: never seen here, or long expired."""
    KNOWN_BEFORE_TRANSACTION = "known_before_transaction"
    """It claims to be known before its transaction happened, which cannot be."""
    PAST_WINDOW = "past_window"
    """Its transaction has left its terminal's windows, so no feature can use it."""


def _location(tx: Transaction) -> tuple[float, float]:
    """The terminal's coordinates, both NaN unless both are known."""
    x, y = tx.terminal_x, tx.terminal_y
    if x is None or y is None or math.isnan(x) or math.isnan(y):
        return math.nan, math.nan
    return float(x), float(y)


class OnlineFeatures:
    """Computes a definition's features one event at a time over a ``FeatureState``.

    ``labels_applied`` and ``labels_ignored`` count label events by what they found in the
    terminal's record (a repeat counts as applied there); a label is ignored when its
    transaction is unknown, expired, or the label claims to be known before the transaction
    itself happened (it could not have been). Each label's own :class:`LabelEffect` says what
    it did to the state as a whole (a label past the terminal's windows that marks the card
    is ``APPLIED``, a repeat ``UNCHANGED``). A label counts for a transaction at
    t only if it became known strictly before t: a label known at the very moment of its own
    transaction (what a file of historical labels gives) is applied right after it.
    """

    def __init__(self, definition: FeatureDefinition, state: FeatureState) -> None:
        self.definition = definition
        self.state = state
        self.labels_applied = 0
        self.labels_ignored = 0
        # At least 1 µs so that eviction never touches events at the current time.
        self._card_horizon = max(definition.horizon_us(Entity.CARD), 1)
        self._terminal_horizon = max(definition.horizon_us(Entity.TERMINAL), 1)
        self._functions = [
            COMPILERS[(feature.kind, feature.entity, feature.aggregate)](feature)
            for feature in definition.features
        ]
        self._reads = state if isinstance(state, AsyncReads) else None
        self._locks = EntityLocks()

    async def serve_async(self, tx: Transaction) -> Served:
        """``serve`` for a caller on the event loop.

        A store with async reads (Redis) is awaited, so the loop serves other transactions
        meanwhile; the card and the terminal are locked from the read to the write, so two
        transactions of one card or terminal still update it one after the other. Any other
        store is read and written at once, as ``serve`` does.
        """
        reads = self._reads
        if reads is None:
            return self.serve(tx)
        async with self._locks.holding(f"card:{tx.customer_id}", f"terminal:{tx.terminal_id}"):
            records = await reads.fetch_event(tx.customer_id, tx.terminal_id, tx.transaction_id)
            served, write = self.compute(tx, *records)
            if write is not None:
                self.state.put_event(write)
        return served

    async def observe_label_async(self, label: Label) -> LabelEffect:
        """``observe_label`` for a caller on the event loop (see ``serve_async``)."""
        reads = self._reads
        if reads is None:
            return self.observe_label(label)
        ref = await reads.fetch_tx_ref(label.transaction_id)
        if ref is None:
            return self.apply_label(label, None, None)[0]  # counted as ignored
        terminal_key = f"terminal:{ref.terminal_id}"
        keys = (f"card:{ref.card_id}", terminal_key) if ref.card_id else (terminal_key,)
        async with self._locks.holding(*keys):
            card, terminal = await reads.fetch_pair(ref.card_id, ref.terminal_id)
            return self._record_label(label, ref, card, terminal)

    def compute_and_update(self, tx: Transaction) -> np.ndarray:
        """The features of ``tx`` in definition order (float64); then ``tx`` joins the state."""
        return self.serve(tx).values

    def serve(self, tx: Transaction) -> Served:
        """The features and signals of ``tx``; then ``tx`` joins the state (unless it
        conflicts with a transaction seen under its id: see ``compute``)."""
        records = self.state.get_event(tx.customer_id, tx.terminal_id, tx.transaction_id)
        served, write = self.compute(tx, *records)
        if write is not None:
            self.state.put_event(write)
        return served

    def compute(
        self,
        tx: Transaction,
        card: CardState | None,
        terminal: TerminalState | None,
        ref: TxRef | None = None,
    ) -> tuple[Served, StateWrite | None]:
        """The features and signals of ``tx`` from its records, and the records with ``tx``
        joined.

        No I/O: the records are updated in place and returned in the write, so the store is
        touched only by ``serve``, once to read and once to write. ``ref`` is the reference
        of a transaction already seen under ``tx``'s id: one at another time, card or
        terminal (or, found in the card's record, with another amount) is another payment
        under a used id. It is not served and joins nothing: the features are NaN, the
        write None, and ``Served.conflict`` names the fields that differ.
        """
        t = to_micros(tx.timestamp)
        if ref is not None and (conflict := _differs(ref, t, tx)):
            return self._conflict(conflict), None
        card = card or CardState()
        terminal = terminal or TerminalState()
        signals = {DAYS_SINCE_CARD_FRAUD: _days_since(card.fraud_known_at, t)}
        card.evict(windows.expired_count(card.ts, t, self._card_horizon))
        terminal.evict(windows.expired_count(terminal.ts, t, self._terminal_horizon))
        # A transaction its records already hold (a replay, or a retry another replica
        # decided) is taken out while its features are computed and then put back once: it
        # gets the features it had the first time, and no window counts it twice.
        tx_id = tx.transaction_id
        card_index = windows.insertion_index(card.ts, card.transaction_ids, t, tx_id)
        card_held = windows.holds_at(card.ts, card.transaction_ids, card_index, t, tx_id)
        if card_held:
            card_index -= 1
            if card.amounts[card_index] != float(tx.amount):
                return self._conflict(("amount",)), None
            card.remove(card_index)
        terminal_index = windows.insertion_index(terminal.ts, terminal.transaction_ids, t, tx_id)
        label: tuple[int, bool] | None = None
        if windows.holds_at(terminal.ts, terminal.transaction_ids, terminal_index, t, tx_id):
            terminal_index -= 1
            label = terminal.remove(terminal_index)
        x, y = _location(tx)
        amount = float(tx.amount)
        event = _Event(t, amount, tx.terminal_id, x, y, card, terminal)
        values = np.array([function(event) for function in self._functions], dtype=np.float64)

        card.insert(card_index, t, tx_id, amount, tx.terminal_id, x, y)
        terminal.insert(terminal_index, t, tx_id)
        if label is not None:  # the label it may have had since stays with it
            terminal.label_known_at[terminal_index], terminal.is_fraud[terminal_index] = label
        write = StateWrite(
            tx.customer_id,
            card,
            tx.terminal_id,
            terminal,
            tx_id,
            TxRef(tx.terminal_id, t, tx.customer_id),
            t + self._terminal_horizon,
        )
        return Served(values, signals, card_held or label is not None), write

    def _conflict(self, fields: tuple[str, ...]) -> Served:
        nan = np.full(len(self._functions), math.nan)
        return Served(nan, {}, seen_before=True, conflict=fields)

    def observe_label(self, label: Label) -> LabelEffect:
        """Record a label on its terminal and its card; the latest ``known_at`` wins, a fraud
        label wins a tie."""
        ref = self.state.get_tx_ref(label.transaction_id)
        if ref is None:
            return self.apply_label(label, None, None)[0]  # counted as ignored
        card, terminal = self.state.get_pair(ref.card_id, ref.terminal_id)
        return self._record_label(label, ref, card, terminal)

    def _record_label(
        self, label: Label, ref: TxRef, card: CardState | None, terminal: TerminalState | None
    ) -> LabelEffect:
        """Apply ``label`` to the records its transaction touched and store what changed
        (a reference from before references named the card reaches the terminal only)."""
        effect, changed = self.apply_label(label, ref, terminal)
        if changed is not None:
            self.state.put_terminal(ref.terminal_id, changed)
        marked = None if card is None or not ref.card_id else mark_card(card, label, ref)
        if marked is not None:
            self.state.put_card(ref.card_id, marked)
            if effect in (LabelEffect.UNCHANGED, LabelEffect.PAST_WINDOW):
                effect = LabelEffect.APPLIED  # it reached the card
        return effect

    def apply_label(
        self, label: Label, ref: TxRef | None, terminal: TerminalState | None
    ) -> tuple[LabelEffect, TerminalState | None]:
        """Apply ``label`` to its terminal's record: what it did, and the record if it
        changed (else None).

        Counts the label as applied (found in the record) or ignored either way.
        """
        known_at = to_micros(label.known_at)
        if ref is None:
            return self._ignored(LabelEffect.UNKNOWN_TRANSACTION)
        if known_at < ref.ts:
            return self._ignored(LabelEffect.KNOWN_BEFORE_TRANSACTION)
        if terminal is None:
            return self._ignored(LabelEffect.PAST_WINDOW)
        lo = bisect_left(terminal.ts, ref.ts)
        hi = bisect_right(terminal.ts, ref.ts, lo)
        try:
            index = terminal.transaction_ids.index(label.transaction_id, lo, hi)
        except ValueError:
            return self._ignored(LabelEffect.PAST_WINDOW)
        self.labels_applied += 1
        previous = terminal.label_known_at[index]
        fraud_wins_tie = known_at == previous and label.is_fraud and not terminal.is_fraud[index]
        if known_at > previous or fraud_wins_tie:
            terminal.label_known_at[index] = known_at
            terminal.is_fraud[index] = label.is_fraud
            return LabelEffect.APPLIED, terminal
        return LabelEffect.UNCHANGED, None

    def _ignored(self, effect: LabelEffect) -> tuple[LabelEffect, None]:
        self.labels_ignored += 1
        return effect, None


def mark_card(card: CardState, label: Label, ref: TxRef) -> CardState | None:
    """Apply ``label`` (for the transaction ``ref`` points to) to its card; the card if changed.

    A fraud label newer than the card's confirmed fraud becomes it. A genuine label clears the
    card only when it overrules that very fraud with a newer verdict (an earlier fraud it
    had replaced is not restored). A label claimed known before its transaction is ignored.
    """
    known_at = to_micros(label.known_at)
    if known_at < ref.ts:
        return None
    if label.is_fraud:
        if card.fraud_known_at is not None and known_at <= card.fraud_known_at:
            return None
        card.fraud_known_at = known_at
        card.fraud_transaction_id = label.transaction_id
        return card
    if (
        card.fraud_transaction_id == label.transaction_id
        and card.fraud_known_at is not None
        and known_at > card.fraud_known_at
    ):
        card.fraud_known_at = None
        card.fraud_transaction_id = None
        return card
    return None


def _differs(ref: TxRef, t: int, tx: Transaction) -> tuple[str, ...]:
    """The fields in which ``tx`` (at ``t``) is not the transaction ``ref`` points to."""
    fields = []
    if ref.ts != t:
        fields.append("timestamp")
    if ref.card_id and ref.card_id != tx.customer_id:
        fields.append("customer_id")
    if ref.terminal_id != tx.terminal_id:
        fields.append("terminal_id")
    return tuple(fields)


def _days_since(known_at: int | None, t: int) -> float:
    """Days from ``known_at`` to ``t``; infinite when nothing was known strictly before ``t``."""
    if known_at is None or known_at >= t:
        return math.inf
    return (t - known_at) / _MICROS_PER_DAY


class EntityLocks:
    """Per-entity locks for one event loop, made on demand and dropped when free.

    ``holding`` takes its keys in the order given; every caller names a card before a
    terminal, so two callers never wait for each other in a cycle.
    """

    def __init__(self) -> None:
        self._held: dict[str, asyncio.Future[None]] = {}

    @asynccontextmanager
    async def holding(self, *keys: str) -> AsyncIterator[None]:
        """Hold ``keys`` for the block, waiting (in turn) for whoever holds one of them."""
        taken: list[str] = []
        try:
            for key in keys:
                while (released := self._held.get(key)) is not None:
                    await asyncio.shield(released)
                self._held[key] = asyncio.get_running_loop().create_future()
                taken.append(key)
            yield
        finally:
            for key in reversed(taken):
                self._held.pop(key).set_result(None)
