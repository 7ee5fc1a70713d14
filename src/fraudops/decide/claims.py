"""Which replica decides a transaction, when several share the online state in Redis.

``RecentDecisions`` makes a retry to the same process return the first answer. Behind a
load balancer a retry may reach another replica, and usually while the first is still
deciding: that is why the client retried. So each replica claims a transaction in Redis as
it reads the transaction's card: ``SET {prefix}:decision:{id} ? NX GET``, sent on the
feature store's pipelined connection in the same round trip as the card's read, so it
costs no round trip of its own. The replica that set the key decides, and then stores
its decision under the key (with the next round trip, as the state's writes go). Any
other replica gets what the key holds: the decision, which it returns as the retry's
answer without deciding or logging again (unless the retry carries other content: a
conflict, see ``decide.recent``); or the mark of a decision in flight, which it polls for
until its own deadline.

How long the key lives: ``pending_ttl_s`` while its decision is being made, so that a
replica that dies holding a claim blocks a retry for that long at most; then
``decided_ttl_s`` (``service.replica_recent_s``), the span in which any replica answers a
retry with the first decision. Past it the decision log still has the decision, and the
online state still counts the transaction once (``OnlineFeatures.compute``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import redis

from fraudops.decide.recent import Content
from fraudops.errors import ConfigError, StoreError
from fraudops.features.redis_pipe import mark_retrieved
from fraudops.types import Action, Decision, Reason

if TYPE_CHECKING:
    from fraudops.features.redis_state import RedisFeatureState
    from fraudops.resilience import Deadline

PENDING = b"?"
"""What a claim holds while its decision is being made."""

_MILLIS_PER_S = 1000


@dataclass(frozen=True, slots=True)
class Stored:
    """A decision kept under its claim, with the content of the transaction it decided."""

    decision: Decision
    content: Content | None


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a transaction: this replica's to decide, or decided elsewhere
    (``stored``, or None while still being decided there)."""

    ours: bool
    stored: Stored | None = None


class DecisionClaims(Protocol):
    """Who decides a transaction among replicas sharing one online state."""

    def claim(self, transaction_id: str) -> Awaitable[Claim]:
        """Claim ``transaction_id`` unless another replica has: the claim goes with the
        state's next round trip, so await the outcome after it (``StoreError`` on failure)."""
        ...

    async def wait(self, transaction_id: str, deadline: Deadline) -> Stored | None:
        """The claiming replica's decision once made; None if not by ``deadline``."""
        ...

    async def decision(self, transaction_id: str) -> Stored | None:
        """The decision stored under the transaction's claim, if any (``StoreError`` on
        failure)."""
        ...

    def settle(self, decision: Decision, content: Content) -> None:
        """Record ``decision``, made on ``content``, under this replica's claim, for other
        replicas' retries."""
        ...

    def release(self, transaction_id: str) -> None:
        """Give up this replica's claim without a decision (the request was refused)."""
        ...


class RedisClaims:
    """Claims on transactions, kept in the Redis of a ``RedisFeatureState`` (on its pipe)."""

    def __init__(
        self,
        state: RedisFeatureState,
        *,
        decided_ttl_s: float,
        pending_ttl_s: float = 1.0,
        poll_s: float = 0.002,
    ) -> None:
        self.state = state
        self.decided_ttl_ms = max(1, round(decided_ttl_s * _MILLIS_PER_S))
        self.pending_ttl_ms = max(1, round(pending_ttl_s * _MILLIS_PER_S))
        self.poll_s = poll_s
        self._prefix = f"{state.prefix}:decision:"

    def check(self) -> None:
        """Whether this Redis can hold claims (``SET`` with both ``NX`` and ``GET`` came in
        Redis 7.0): ``ConfigError`` if it refuses, ``StoreError`` if it cannot be asked."""
        probe = f"{self._prefix}probe:{uuid.uuid4().hex}"
        try:
            self.state.client.set(probe, PENDING, nx=True, get=True, px=1000)
        except redis.ResponseError as exc:
            raise ConfigError(
                f"this Redis cannot hold the replicas' claims ({exc}; SET with NX and GET"
                " needs Redis 7.0): upgrade it, or set service.replica_recent_s to 0"
            ) from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis could not be asked about claims: {exc}") from exc

    def claim(self, transaction_id: str) -> Awaitable[Claim]:
        """Claim ``transaction_id`` unless another replica has, in the state's next round
        trip (the caller's fetch of the card); await the outcome once that trip is made (a
        caller whose fetch failed may leave it unawaited)."""
        key = self._prefix + transaction_id
        reply = self.state.attach(("SET", key, PENDING, "NX", "GET", "PX", self.pending_ttl_ms))
        outcome: asyncio.Future[Claim] = asyncio.get_running_loop().create_future()

        def resolve(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                outcome.cancel()
            elif (error := done.exception()) is not None:
                outcome.set_exception(error)
            elif done.result() is None:
                outcome.set_result(Claim(ours=True))
            else:
                try:
                    stored = _decoded(key, transaction_id, done.result())
                except StoreError as exc:
                    outcome.set_exception(exc)
                else:
                    outcome.set_result(Claim(ours=False, stored=stored))

        reply.add_done_callback(resolve)
        outcome.add_done_callback(mark_retrieved)
        return outcome

    async def wait(self, transaction_id: str, deadline: Deadline) -> Stored | None:
        """The decision another replica is making, once it has stored it; None if it has not
        by ``deadline`` (or Redis fails meanwhile)."""
        while deadline.remaining() > self.poll_s:
            await asyncio.sleep(self.poll_s)
            try:
                stored = await self.decision(transaction_id)
            except StoreError:
                return None
            if stored is not None:
                return stored
        return None

    async def decision(self, transaction_id: str) -> Stored | None:
        """The decision stored under the transaction's claim; None if there is none (yet)."""
        key = self._prefix + transaction_id
        (held,) = await self.state.exchange("claim", key, [("GET", key)])
        return None if held is None else _decoded(key, transaction_id, held)

    def settle(self, decision: Decision, content: Content) -> None:
        """Store ``decision`` (made on ``content``) under its claim, with the state's next
        round trip."""
        key = self._prefix + decision.transaction_id
        value = orjson.dumps(_encoded(decision) | {"content": list(content)})
        self.state.defer_write(("SET", key, value, "PX", self.decided_ttl_ms))

    def release(self, transaction_id: str) -> None:
        """Drop this replica's claim, with the state's next round trip, so another replica's
        retry of the first payment need not wait for the pending mark to lapse."""
        self.state.defer_write(("DEL", self._prefix + transaction_id))


def _encoded(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action.value,
        "score": decision.score,
        "reasons": [[reason.code, reason.contribution] for reason in decision.reasons],
        "model_version": decision.model_version,
        "latency_ms": decision.latency_ms,
        "degraded": decision.degraded,
        "degraded_reason": decision.degraded_reason,
        "rule_hits": list(decision.rule_hits),
        "source": decision.source,
    }


def _decoded(key: str, transaction_id: str, held: bytes) -> Stored | None:
    """The decision a claim holds, with its transaction's content; None while it is pending."""
    if held == PENDING:
        return None
    try:
        data = orjson.loads(held)
        content = data.get("content")
        decision = Decision(
            transaction_id=transaction_id,
            action=Action(data["action"]),
            score=float(data["score"]),
            reasons=tuple(Reason(str(code), float(value)) for code, value in data["reasons"]),
            model_version=str(data["model_version"]),
            latency_ms=float(data["latency_ms"]),
            degraded=bool(data["degraded"]),
            degraded_reason=data["degraded_reason"],
            rule_hits=tuple(data["rule_hits"]),
            source=str(data["source"]),
        )
        if content is not None:
            at, card, terminal, amount, currency = content
            content = int(at), str(card), str(terminal), float(amount), str(currency)
        return Stored(decision, content)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"Redis claim {key!r} holds no decision: {exc}") from exc
