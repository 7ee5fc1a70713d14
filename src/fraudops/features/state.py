"""Per-entity online feature state: the records, the store seam, and the in-memory store.

One transaction reads and writes one card record and one terminal record, and reads and
writes one transaction reference: read, it tells whether the id was seen before (and as
which payment); written, it lets a later label find the transaction's terminal. One label reads that
reference and reads and writes one terminal record. Records serialise to JSON-ready dicts,
so a Redis store is ``get``/``set`` of ``encode()``d records with a TTL on references.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

NO_LABEL = -1
"""``label_known_at`` of a transaction whose label has not been seen."""


@dataclass(slots=True)
class CardState:
    """A card's recent transactions, sorted by ``(ts, transaction_id)``.

    ``located`` is 1 for a transaction whose terminal has a location (``xs``/``ys``),
    0 (with 0.0 coordinates) otherwise. ``last_expired_ts`` is the newest timestamp
    already evicted, so the time since the previous transaction survives the window.
    ``fraud_known_at`` is when the latest fraud confirmed on this card (an analyst's verdict
    or a chargeback) became known, and ``fraud_transaction_id`` that fraud; None if none.
    They outlive the window: a card is compromised however old its confirmed fraud.
    """

    ts: list[int] = field(default_factory=list)
    transaction_ids: list[str] = field(default_factory=list)
    amounts: list[float] = field(default_factory=list)
    terminal_ids: list[str] = field(default_factory=list)
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    located: list[int] = field(default_factory=list)
    last_expired_ts: int | None = None
    fraud_known_at: int | None = None
    fraud_transaction_id: str | None = None

    def insert(
        self, index: int, t: int, transaction_id: str, amount: float, terminal_id: str,
        x: float, y: float,
    ) -> None:  # fmt: skip
        """Insert one transaction at ``index``; NaN coordinates mean no location."""
        located = not (math.isnan(x) or math.isnan(y))
        self.ts.insert(index, t)
        self.transaction_ids.insert(index, transaction_id)
        self.amounts.insert(index, amount)
        self.terminal_ids.insert(index, terminal_id)
        self.xs.insert(index, x if located else 0.0)
        self.ys.insert(index, y if located else 0.0)
        self.located.insert(index, 1 if located else 0)

    def remove(self, index: int) -> None:
        """Drop the transaction at ``index`` (not an eviction: the window's times stay)."""
        for column in (
            self.ts, self.transaction_ids, self.amounts, self.terminal_ids, self.xs, self.ys,
            self.located,
        ):  # fmt: skip
            del column[index]

    def evict(self, count: int) -> None:
        """Drop the ``count`` oldest transactions, remembering the newest dropped time."""
        if count <= 0:
            return
        self.last_expired_ts = self.ts[count - 1]
        del self.ts[:count]
        del self.transaction_ids[:count]
        del self.amounts[:count]
        del self.terminal_ids[:count]
        del self.xs[:count]
        del self.ys[:count]
        del self.located[:count]

    def encode(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "ts": list(self.ts),
            "transaction_ids": list(self.transaction_ids),
            "amounts": list(self.amounts),
            "terminal_ids": list(self.terminal_ids),
            "xs": list(self.xs),
            "ys": list(self.ys),
            "located": list(self.located),
            "last_expired_ts": self.last_expired_ts,
            "fraud_known_at": self.fraud_known_at,
            "fraud_transaction_id": self.fraud_transaction_id,
        }

    @classmethod
    def decode(cls, data: dict[str, object]) -> CardState:
        """The record ``encode`` produced."""
        return cls(
            ts=list(data["ts"]),  # type: ignore[call-overload]
            transaction_ids=list(data["transaction_ids"]),  # type: ignore[call-overload]
            amounts=list(data["amounts"]),  # type: ignore[call-overload]
            terminal_ids=list(data["terminal_ids"]),  # type: ignore[call-overload]
            xs=list(data["xs"]),  # type: ignore[call-overload]
            ys=list(data["ys"]),  # type: ignore[call-overload]
            located=list(data["located"]),  # type: ignore[call-overload]
            last_expired_ts=data["last_expired_ts"],  # type: ignore[arg-type]
            # Records written before cards carried confirmed frauds have neither key.
            fraud_known_at=data.get("fraud_known_at"),  # type: ignore[arg-type]
            fraud_transaction_id=data.get("fraud_transaction_id"),  # type: ignore[arg-type]
        )


@dataclass(slots=True)
class TerminalState:
    """A terminal's recent transactions with the latest label seen for each.

    ``label_known_at`` is ``NO_LABEL`` until a label arrives; ``is_fraud`` is that label.
    """

    ts: list[int] = field(default_factory=list)
    transaction_ids: list[str] = field(default_factory=list)
    label_known_at: list[int] = field(default_factory=list)
    is_fraud: list[bool] = field(default_factory=list)

    def insert(self, index: int, t: int, transaction_id: str) -> None:
        """Insert one unlabelled transaction at ``index``."""
        self.ts.insert(index, t)
        self.transaction_ids.insert(index, transaction_id)
        self.label_known_at.insert(index, NO_LABEL)
        self.is_fraud.insert(index, False)

    def remove(self, index: int) -> tuple[int, bool]:
        """Drop the transaction at ``index``; its ``(label_known_at, is_fraud)``."""
        label = self.label_known_at.pop(index), self.is_fraud.pop(index)
        del self.ts[index]
        del self.transaction_ids[index]
        return label

    def evict(self, count: int) -> None:
        """Drop the ``count`` oldest transactions."""
        if count <= 0:
            return
        del self.ts[:count]
        del self.transaction_ids[:count]
        del self.label_known_at[:count]
        del self.is_fraud[:count]

    def encode(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "ts": list(self.ts),
            "transaction_ids": list(self.transaction_ids),
            "label_known_at": list(self.label_known_at),
            "is_fraud": list(self.is_fraud),
        }

    @classmethod
    def decode(cls, data: dict[str, object]) -> TerminalState:
        """The record ``encode`` produced."""
        return cls(
            ts=list(data["ts"]),  # type: ignore[call-overload]
            transaction_ids=list(data["transaction_ids"]),  # type: ignore[call-overload]
            label_known_at=list(data["label_known_at"]),  # type: ignore[call-overload]
            is_fraud=list(data["is_fraud"]),  # type: ignore[call-overload]
        )


class TxRef(NamedTuple):
    """Where a label must go: the terminal, time and card of its transaction.

    ``card_id`` is empty in a reference stored before references named the card; a label
    for such a transaction reaches only its terminal.
    """

    terminal_id: str
    ts: int
    card_id: str = ""


class EventRecords(NamedTuple):
    """What a transaction is served from: its card's and its terminal's records, and the
    reference of a transaction already seen under its id (None: the id is new here)."""

    card: CardState | None
    terminal: TerminalState | None
    ref: TxRef | None


class FeatureState(Protocol):
    """The per-entity state store behind the online engine.

    ``get_*`` may return a live object; callers always ``put_*`` a record after changing
    it, so stores that copy (Redis) and stores that share (memory) behave the same.
    """

    def get_card(self, card_id: str) -> CardState | None: ...

    def put_card(self, card_id: str, state: CardState) -> None: ...

    def get_terminal(self, terminal_id: str) -> TerminalState | None: ...

    def put_terminal(self, terminal_id: str, state: TerminalState) -> None: ...

    def get_tx_ref(self, transaction_id: str) -> TxRef | None: ...

    def put_tx_ref(self, transaction_id: str, ref: TxRef, expires_at: int) -> None:
        """Keep ``ref`` until event time ``expires_at`` (µs); later it may be gone."""
        ...

    def get_pair(
        self, card_id: str, terminal_id: str
    ) -> tuple[CardState | None, TerminalState | None]:
        """The card's and the terminal's records at once (one round trip for a remote store)."""
        ...

    def get_event(self, card_id: str, terminal_id: str, transaction_id: str) -> EventRecords:
        """The card's and the terminal's records and the id's reference at once (one round
        trip for a remote store)."""
        ...

    def put_event(self, event: StateWrite) -> None:
        """Write one transaction's card, terminal and reference at once."""
        ...


@runtime_checkable
class AsyncReads(Protocol):
    """Reads a remote store also offers without blocking the event loop.

    A caller on the loop awaits them instead of ``get_pair``/``get_tx_ref``. Other
    transactions then run while one waits, so the caller must keep two updates of one card
    or terminal from interleaving (``OnlineFeatures`` locks the entities it reads). Once a
    store has been read this way, its writes go the same way, in order.
    """

    async def fetch_pair(
        self, card_id: str, terminal_id: str
    ) -> tuple[CardState | None, TerminalState | None]: ...

    async def fetch_tx_ref(self, transaction_id: str) -> TxRef | None: ...

    async def fetch_event(
        self, card_id: str, terminal_id: str, transaction_id: str
    ) -> EventRecords: ...


class StateWrite(NamedTuple):
    """What one transaction changes in the state, written together."""

    card_id: str
    card: CardState
    terminal_id: str
    terminal: TerminalState
    transaction_id: str
    ref: TxRef
    ref_expires_at: int


class InMemoryFeatureState:
    """The embedded store: dicts in this process, references expired by event time."""

    def __init__(self) -> None:
        self._cards: dict[str, CardState] = {}
        self._terminals: dict[str, TerminalState] = {}
        self._refs: dict[str, tuple[TxRef, int]] = {}
        self._expiry: deque[tuple[int, str]] = deque()

    def get_card(self, card_id: str) -> CardState | None:
        """The card's record, or None for a card never seen."""
        return self._cards.get(card_id)

    def put_card(self, card_id: str, state: CardState) -> None:
        """Store the card's record."""
        self._cards[card_id] = state

    def get_terminal(self, terminal_id: str) -> TerminalState | None:
        """The terminal's record, or None for a terminal never seen."""
        return self._terminals.get(terminal_id)

    def put_terminal(self, terminal_id: str, state: TerminalState) -> None:
        """Store the terminal's record."""
        self._terminals[terminal_id] = state

    def get_tx_ref(self, transaction_id: str) -> TxRef | None:
        """The transaction's reference, or None if unknown or expired."""
        entry = self._refs.get(transaction_id)
        return None if entry is None else entry[0]

    def put_tx_ref(self, transaction_id: str, ref: TxRef, expires_at: int) -> None:
        """Store ``ref``; references whose expiry precedes ``ref.ts`` are dropped."""
        self._refs[transaction_id] = (ref, expires_at)
        self._expiry.append((expires_at, transaction_id))
        # Event time only moves forward in a stream, so the newest reference's time is
        # "now" and the queue is (nearly) in expiry order; a straggler waits its turn.
        while self._expiry and self._expiry[0][0] <= ref.ts:
            expired_at, expired = self._expiry.popleft()
            entry = self._refs.get(expired)
            if entry is not None and entry[1] == expired_at:
                del self._refs[expired]

    def get_pair(
        self, card_id: str, terminal_id: str
    ) -> tuple[CardState | None, TerminalState | None]:
        """The card's and the terminal's records."""
        return self._cards.get(card_id), self._terminals.get(terminal_id)

    def get_event(self, card_id: str, terminal_id: str, transaction_id: str) -> EventRecords:
        """The card's and the terminal's records and the id's reference."""
        return EventRecords(
            self._cards.get(card_id),
            self._terminals.get(terminal_id),
            self.get_tx_ref(transaction_id),
        )

    def put_event(self, event: StateWrite) -> None:
        """Store one transaction's card, terminal and reference."""
        self._cards[event.card_id] = event.card
        self._terminals[event.terminal_id] = event.terminal
        self.put_tx_ref(event.transaction_id, event.ref, event.ref_expires_at)

    def sizes(self) -> dict[str, int]:
        """How many cards, terminals and references are held (for metrics and tests)."""
        return {
            "cards": len(self._cards),
            "terminals": len(self._terminals),
            "tx_refs": len(self._refs),
        }
