"""Recent decisions by transaction id: what makes a retry return the first answer.

A payment network retries when an answer is late, so the same transaction id can arrive
twice, even while the first is still being decided. The first request claims the id; a
retry either finds the finished decision or waits for the one in flight. Neither decides
again, so the online state sees each transaction once. This holds within one process;
``decide.claims`` does the same across replicas that share the state in Redis.

A retry must be the same payment: each decision is held with its transaction's content
(time, card, terminal, amount, currency), and an id sent again with other content is a
conflict (``conflict``), refused rather than answered with another payment's decision.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from fraudops.errors import ConflictingDuplicateError
from fraudops.features.online import to_micros
from fraudops.types import Decision, Transaction

Content = tuple[int, str, str, float, str]
"""What makes a payment the same one: its time (µs since the epoch), card, terminal, amount
and currency."""

_CONTENT_FIELDS = ("timestamp", "customer_id", "terminal_id", "amount", "currency")


def content_of(tx: Transaction) -> Content:
    """The content a retry of ``tx`` must repeat."""
    return to_micros(tx.timestamp), tx.customer_id, tx.terminal_id, float(tx.amount), tx.currency


def conflict(
    transaction_id: str, first: Content | None, again: Content
) -> ConflictingDuplicateError | None:
    """The error for ``again`` if it is not the content ``first`` was decided on (None when
    it is, or when the first content is unknown)."""
    if first is None or tuple(first) == again:
        return None
    fields = [name for name, a, b in zip(_CONTENT_FIELDS, first, again, strict=True) if a != b]
    return ConflictingDuplicateError(transaction_id, fields)


class RecentDecisions:
    """The last ``capacity`` decisions, plus the ones being decided right now, each with the
    content of its transaction."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._done: OrderedDict[str, tuple[Decision, Content | None]] = OrderedDict()
        self._pending: dict[str, tuple[asyncio.Future[Decision], Content]] = {}

    def __len__(self) -> int:
        return len(self._done)

    def get(self, transaction_id: str) -> Decision | None:
        """The finished decision for ``transaction_id``, if it is still held."""
        held = self._done.get(transaction_id)
        return None if held is None else held[0]

    def content(self, transaction_id: str) -> Content | None:
        """The content ``transaction_id`` was (or is being) decided on, if known."""
        held = self._done.get(transaction_id)
        if held is not None:
            return held[1]
        pending = self._pending.get(transaction_id)
        return None if pending is None else pending[1]

    def pending(self, transaction_id: str) -> asyncio.Future[Decision] | None:
        """The future of a decision in flight for ``transaction_id``, if any."""
        pending = self._pending.get(transaction_id)
        return None if pending is None else pending[0]

    def claim(self, transaction_id: str, content: Content) -> asyncio.Future[Decision]:
        """Mark ``transaction_id`` as being decided on ``content``; retries await the future."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[transaction_id] = future, content
        return future

    def finish(self, transaction_id: str, decision: Decision, *, remember: bool = True) -> None:
        """Record the decision (unless not to ``remember`` it: a stand-in for one still being
        made elsewhere) and wake any retry waiting for it."""
        future, content = self._pending.pop(transaction_id, (None, None))
        if remember:
            self.remember(decision, content)
        if future is not None and not future.done():
            future.set_result(decision)

    def abandon(self, transaction_id: str, error: BaseException) -> None:
        """The claim failed without a decision: waiting retries get the error."""
        future, _ = self._pending.pop(transaction_id, (None, None))
        if future is not None and not future.done():
            future.set_exception(error)
            # A retry may never have awaited it; the error is reported by the first caller.
            future.exception()

    def remember(self, decision: Decision, content: Content | None = None) -> None:
        """Hold ``decision`` (made on ``content``), forgetting the oldest beyond capacity."""
        if self.capacity <= 0:
            return
        self._done[decision.transaction_id] = decision, content
        self._done.move_to_end(decision.transaction_id)
        while len(self._done) > self.capacity:
            self._done.popitem(last=False)
