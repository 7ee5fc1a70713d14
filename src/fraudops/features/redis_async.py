"""The Redis feature state for an asyncio service: the same keys, no thread in between.

``RedisFeatureState`` is synchronous: a service would have to hand each call to a thread,
and every socket wait there gives up the interpreter lock and must win it back from a busy
event loop (several times per transaction, up to the switch interval each). Measured at
500 requests/s, that queue grew until the feature store timed out. This store speaks to
Redis from the event loop itself (``redis.asyncio``), two round trips per transaction: one
read of card and terminal, one pipelined write of both and the reference. The key layout,
the encoding and the event-time expiry script are those of ``RedisFeatureState``, so both
see the same state.
"""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from fraudops.features.redis_state import (
    _MICROS_PER_MILLI,
    _PUT_REF_SCRIPT,
    EXPIRE_BATCH,
    MIN_REF_TTL_MS,
    _failed,
)
from fraudops.features.state import CardState, StateWrite, TerminalState, TxRef


class AsyncRedisFeatureState:
    """The online state in Redis, for callers on an event loop; owns its client."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "fraudops") -> None:
        self.client = client
        self._card = f"{prefix}:card:"
        self._terminal = f"{prefix}:terminal:"
        self._txref = f"{prefix}:txref:"
        self._expiry = f"{prefix}:txref-expiry"
        self._put_ref = client.register_script(_PUT_REF_SCRIPT)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "fraudops", timeout_s: float = 0.02
    ) -> AsyncRedisFeatureState:
        """A store on a new client for ``url`` that fails fast: ``timeout_s``, no retries."""
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # As in RedisFeatureState: no retries hidden inside the deadline.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return cls(client, prefix=prefix)

    async def close(self) -> None:
        """Close the client and its connections."""
        await self.client.aclose()

    async def get_pair(
        self, card_id: str, terminal_id: str
    ) -> tuple[CardState | None, TerminalState | None]:
        """The card's and the terminal's records, in one round trip."""
        card_key, terminal_key = self._card + card_id, self._terminal + terminal_id
        try:
            raw_card, raw_terminal = await self.client.mget((card_key, terminal_key))
        except RedisError as exc:
            raise _failed("get_pair", card_key, exc) from exc
        try:
            card = None if raw_card is None else CardState.decode(orjson.loads(raw_card))
            terminal = (
                None if raw_terminal is None else TerminalState.decode(orjson.loads(raw_terminal))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise _failed("decoding", card_key, exc) from exc
        return card, terminal

    async def put_event(self, event: StateWrite) -> None:
        """Card, terminal and reference in one pipelined round trip (not atomic)."""
        ref, ref_key = event.ref, self._txref + event.transaction_id
        ttl_ms = max((event.ref_expires_at - ref.ts) // _MICROS_PER_MILLI, MIN_REF_TTL_MS)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self._card + event.card_id, orjson.dumps(event.card.encode()))
            pipe.set(self._terminal + event.terminal_id, orjson.dumps(event.terminal.encode()))
            await self._put_ref(
                keys=(ref_key, self._expiry),
                args=(
                    orjson.dumps([ref.terminal_id, ref.ts]),
                    event.ref_expires_at,
                    ttl_ms,
                    event.transaction_id,
                    ref.ts,
                    EXPIRE_BATCH,
                    self._txref,
                ),
                client=pipe,
            )
            await pipe.execute()
        except RedisError as exc:
            raise _failed("put_event", self._card + event.card_id, exc) from exc

    async def get_label_target(
        self, transaction_id: str
    ) -> tuple[TxRef | None, TerminalState | None]:
        """A transaction's reference and its terminal's record (two round trips)."""
        key = self._txref + transaction_id
        try:
            raw = await self.client.get(key)
            if raw is None:
                return None, None
            terminal_id, ts = orjson.loads(raw)
            ref = TxRef(str(terminal_id), int(ts))
            raw_terminal = await self.client.get(self._terminal + ref.terminal_id)
        except RedisError as exc:
            raise _failed("get_label_target", key, exc) from exc
        except (ValueError, TypeError) as exc:
            raise _failed("decoding a transaction reference", key, exc) from exc
        if raw_terminal is None:
            return ref, None
        try:
            return ref, TerminalState.decode(orjson.loads(raw_terminal))
        except (ValueError, KeyError, TypeError) as exc:
            raise _failed("decoding a terminal", ref.terminal_id, exc) from exc

    async def put_terminal(self, terminal_id: str, state: TerminalState) -> None:
        """Store the terminal's record."""
        key = self._terminal + terminal_id
        try:
            await self.client.set(key, orjson.dumps(state.encode()))
        except RedisError as exc:
            raise _failed("put_terminal", key, exc) from exc
