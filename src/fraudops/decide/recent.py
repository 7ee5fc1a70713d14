"""Recent decisions by transaction id: what makes a retry return the first answer.

A payment network retries when an answer is late, so the same transaction id can arrive
twice, even while the first is still being decided. The first request claims the id; a
retry either finds the finished decision or waits for the one in flight. Neither decides
again, so the online state sees each transaction once. This holds within one process;
``decide.claims`` does the same across replicas that share the state in Redis.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from fraudops.types import Decision


class RecentDecisions:
    """The last ``capacity`` decisions, plus the ones being decided right now."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._done: OrderedDict[str, Decision] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Decision]] = {}

    def __len__(self) -> int:
        return len(self._done)

    def get(self, transaction_id: str) -> Decision | None:
        """The finished decision for ``transaction_id``, if it is still held."""
        return self._done.get(transaction_id)

    def pending(self, transaction_id: str) -> asyncio.Future[Decision] | None:
        """The future of a decision in flight for ``transaction_id``, if any."""
        return self._pending.get(transaction_id)

    def claim(self, transaction_id: str) -> asyncio.Future[Decision]:
        """Mark ``transaction_id`` as being decided; retries will await the future."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[transaction_id] = future
        return future

    def finish(self, transaction_id: str, decision: Decision, *, remember: bool = True) -> None:
        """Record the decision (unless not to ``remember`` it: a stand-in for one still being
        made elsewhere) and wake any retry waiting for it."""
        future = self._pending.pop(transaction_id, None)
        if remember:
            self.remember(decision)
        if future is not None and not future.done():
            future.set_result(decision)

    def abandon(self, transaction_id: str, error: BaseException) -> None:
        """The claim failed without a decision: waiting retries get the error."""
        future = self._pending.pop(transaction_id, None)
        if future is not None and not future.done():
            future.set_exception(error)
            # A retry may never have awaited it; the error is reported by the first caller.
            future.exception()

    def remember(self, decision: Decision) -> None:
        """Hold ``decision``, forgetting the oldest beyond capacity."""
        if self.capacity <= 0:
            return
        self._done[decision.transaction_id] = decision
        self._done.move_to_end(decision.transaction_id)
        while len(self._done) > self.capacity:
            self._done.popitem(last=False)
