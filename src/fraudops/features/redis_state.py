"""The online feature state in Redis, so any replica of the decision service can score any card.

Two ways in. The synchronous methods (the ``FeatureState`` Protocol) use a redis-py client
whose every call is bounded by the socket timeout (``timeout_s``): for scripts, replays and
tests. The decision service, on its event loop, awaits ``fetch_pair`` and ``fetch_tx_ref``
(``AsyncReads``) instead: one round trip each on a pipelined connection
(``features.redis_pipe``), during which the loop serves other requests rather than
blocking. The blocking client stalled the whole loop whenever Redis waited for a core,
and the tail followed: p99 at 500 requests/s on this 2-core machine, in paired 30 s runs
(``bench/service.py --rates 500 --duration 30``), 7.8 and 9.2 ms awaited against 9.7 and
10.0 ms blocking while the machine was quiet, 17 against 43 ms while it was busy, for the
same CPU per request (0.86-0.97 against 0.98 ms). Other async ways
were measured before and lost: a thread per call must win the interpreter lock back from
the busy loop at every socket wait (the queue grew until the store timed out at 500
requests/s), and ``redis.asyncio`` spends about 2,600 Python calls and over 1 ms of CPU per
transaction (at 200 requests/s its breaker opened and 73 % of decisions fell back to the
static policy). Once a store has been fetched from, its writes go through the pipe too, in
order behind the fetches; use one way or the other on a store, not both at once.

Deferred writes: a transaction's ``put_event`` (and, on the async path, every write) is
held back and sent in the same round trip as the next read, ahead of it (Redis runs a
connection's commands in order, so the read sees the write), or by a timer on the running
event loop after ``write_delay_s`` if no read comes first, or by ``flush``/``close``. A
transaction then costs one round trip instead of two. The price: another replica sees a
transaction's write up to ``write_delay_s`` later; a crash loses the state writes of the
last ``write_delay_s`` at most (the decisions themselves are in the decision log); and a
failed write is reported by the next read, not by the write. A failed round trip keeps
its writes, to go again (in order, ahead of newer ones) with the next read; that read
raises ``StoreError`` if Redis is still failing. Writes are dropped only at ``close``
(which raises) or past ``MAX_DEFERRED`` (the write that overflows raises). With no running
event loop (a script, a thread) the synchronous path writes through, as with
``write_delay_s`` 0.

Layout, under one ``prefix``:

- ``{prefix}:card:{card_id}`` and ``{prefix}:terminal:{terminal_id}``: a record's
  ``encode()`` as JSON (orjson). No TTL: the engine trims every record's windows as it
  reads it, so a record holds at most its horizon; a card or terminal that stops
  transacting keeps its last record, as in memory.
- ``{prefix}:txref:{transaction_id}``: ``[terminal_id, ts, card_id]`` as JSON (a
  reference written before references named the card is ``[terminal_id, ts]``).
- ``{prefix}:txref-expiry``: a sorted set of transaction ids scored by their reference's
  event-time expiry (µs; exact in a double below 2**53, i.e. for 285 years after 1970).
- ``{prefix}:decision:{transaction_id}``: which replica decides the transaction, then its
  decision, with a wall-clock TTL; kept by ``decide.claims`` through ``attach``,
  ``exchange`` and ``defer_write``, on this store's connection.

References expire by event time, as in ``InMemoryFeatureState``: writing one drops those
whose expiry is at or before its time, in the same round trip (one Lua script). Each write
drops at most ``EXPIRE_BATCH`` so no write blocks Redis for long after a gap in the stream;
a larger backlog drains over the next writes (the Protocol allows a reference to outlive its
expiry, and the engine ignores a label whose transaction has left its terminal's window).

Each reference key also carries a wall-clock TTL as a safety net against unbounded growth
should event time stop advancing: its event-time lifetime in milliseconds, at least
``MIN_REF_TTL_MS``. While the stream is processed about as fast as it happens, event-time
expiry comes first; a stream processed far slower than real time could lose a reference to
the TTL before its expiry, and its label would then be ignored.

Every Redis failure (refused, timed out, an error reply) and every record that cannot be
decoded is raised as ``StoreError`` naming the operation and the key; the caller's circuit
breaker and fallback decide what to do, so the client itself never retries.

The script computes reference keys from the prefix, so it suits a single Redis (or a
replicated primary), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import hiredis
import orjson
import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from fraudops.errors import StoreError
from fraudops.features.redis_pipe import RedisPipe, RedisPipeError, mark_retrieved
from fraudops.features.state import CardState, EventRecords, StateWrite, TerminalState, TxRef

EXPIRE_BATCH = 1_000
"""The most expired references one write removes."""

MIN_REF_TTL_MS = 10_000
"""The shortest wall-clock TTL of a reference key."""

MAX_DEFERRED = 64
"""The most transactions' writes held back at once; the one past it writes them all now."""

_Command = tuple[str | bytes | int, ...]
_Group = tuple[_Command, ...]
"""The commands of one write (a transaction's three, or one record's SET)."""

_MICROS_PER_MILLI = 1_000

# KEYS: the reference's key, the expiry index. ARGV: the encoded reference, its event-time
# expiry, its wall-clock TTL (ms), its transaction id, its event time, the batch size, and
# the prefix of reference keys. Returns how many expired references were removed.
_PUT_REF_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, ARGV[6])
if #expired == 0 then
  return 0
end
local keys = {}
for i, id in ipairs(expired) do
  keys[i] = ARGV[7] .. id
end
redis.call('DEL', unpack(keys))
redis.call('ZREM', KEYS[2], unpack(expired))
return #expired
"""


def _failed(operation: str, key: str, exc: Exception) -> StoreError:
    return StoreError(f"Redis {operation} of {key!r} failed: {type(exc).__name__}: {exc}")


class RedisFeatureState:
    """``FeatureState`` in Redis: one round trip per get or put, references expired by event time.

    The store owns ``client``: ``close`` closes it.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = "fraudops", write_delay_s: float = 0.0
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.write_delay_s = write_delay_s
        self._card = f"{prefix}:card:"
        self._terminal = f"{prefix}:terminal:"
        self._txref = f"{prefix}:txref:"
        self._expiry = f"{prefix}:txref-expiry"
        # Registering only computes the script's SHA. ``put_tx_ref`` calls it through
        # redis-py, which loads it on first use and again after a restart flushed it
        # (NOSCRIPT); a transaction's round trip calls it by SHA and does the same itself
        # (through a redis-py pipeline it would cost a SCRIPT EXISTS round trip each time).
        self._put_ref = client.register_script(_PUT_REF_SCRIPT)
        self._deferred: list[_Group] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        # The async path (``fetch_*``): one pipelined connection on the loop of the first
        # fetch; batches of writes sent on it and not yet answered, oldest first.
        self._pipe: RedisPipe | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: deque[list[_Group]] = deque()
        self._flushing: set[asyncio.Task[None]] = set()
        self._closed = False
        # Commands riding with the next round trip whose replies someone awaits (``attach``).
        self._attached: list[tuple[_Command, asyncio.Future[Any]]] = []

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "fraudops",
        timeout_s: float = 0.02,
        write_delay_s: float = 0.0,
    ) -> RedisFeatureState:
        """A store on a new client for ``url`` that fails fast: ``timeout_s``, no retries."""
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # The caller's breaker and fallback chain decide about retrying, within the
            # decision's deadline; retries in here would spend that deadline unseen.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return cls(client, prefix=prefix, write_delay_s=write_delay_s)

    def ping(self) -> None:
        """Check that Redis answers; ``StoreError`` if it does not."""
        try:
            self.client.ping()
        except RedisError as exc:
            raise StoreError(f"Redis PING failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Write what is deferred or unanswered, then close the client and its connections.

        ``StoreError`` if those writes could not be written (they are then lost); the client
        is closed either way. Call it once requests have stopped (it may run on another
        thread than the loop's); a flush timer still pending is cancelled, on the loop's own
        thread.
        Writes the pipe sent but Redis had not answered are written again (they are whole
        records, so writing one twice in order changes nothing).
        """
        # No flush may start after this one: it would outlive the loop, never to run.
        self._closed = True
        timer, self._flush_timer = self._flush_timer, None
        if timer is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(timer.cancel)
        unanswered = [group for batch in self._inflight for group in batch]
        self._inflight.clear()
        self._deferred[:0] = unanswered
        try:
            self.flush()
        finally:
            self._deferred.clear()
            self._close_pipe()
            self.client.close()

    @property
    def deferred(self) -> int:
        """How many writes are held back, waiting for the next round trip."""
        return len(self._deferred)

    def flush(self) -> None:
        """Write every deferred write now, in one round trip; ``StoreError`` if that fails.

        After a failure the writes stay deferred, to be tried again with the next round trip.
        """
        if self._deferred:
            self._pipeline("put_event", self._first_deferred_key(), ())

    def get_card(self, card_id: str) -> CardState | None:
        """The card's record, or None for a card never seen."""
        key = self._card + card_id
        self.flush()
        return _decode_card(key, self._get("get_card", key))

    def put_card(self, card_id: str, state: CardState) -> None:
        """Store the card's record (no TTL: the engine trims its windows)."""
        self._put_record("put_card", self._card + card_id, orjson.dumps(state.encode()))

    def get_terminal(self, terminal_id: str) -> TerminalState | None:
        """The terminal's record, or None for a terminal never seen."""
        key = self._terminal + terminal_id
        self.flush()
        return _decode_terminal(key, self._get("get_terminal", key))

    def put_terminal(self, terminal_id: str, state: TerminalState) -> None:
        """Store the terminal's record (no TTL: the engine trims its windows)."""
        value = orjson.dumps(state.encode())
        self._put_record("put_terminal", self._terminal + terminal_id, value)

    def _put_record(self, operation: str, key: str, value: bytes) -> None:
        """SET one record: at once, or on the async path with the next round trip on the
        pipe, like ``put_event``."""
        if self._pipe is not None:
            self._defer((("SET", key, value),))
            return
        self.flush()
        self._set(operation, key, value)

    def get_tx_ref(self, transaction_id: str) -> TxRef | None:
        """The transaction's reference, or None if unknown or expired."""
        key = self._txref + transaction_id
        self.flush()
        raw = self._get("get_tx_ref", key)
        return None if raw is None else _decode_ref(key, raw)

    def put_tx_ref(self, transaction_id: str, ref: TxRef, expires_at: int) -> None:
        """Store ``ref``; references whose expiry is at or before ``ref.ts`` are dropped."""
        key = self._txref + transaction_id
        self.flush()
        ttl_ms = max((expires_at - ref.ts) // _MICROS_PER_MILLI, MIN_REF_TTL_MS)
        args = (
            orjson.dumps(list(ref)),
            expires_at,
            ttl_ms,
            transaction_id,
            ref.ts,
            EXPIRE_BATCH,
            self._txref,
        )
        try:
            self._put_ref(keys=(key, self._expiry), args=args)
        except RedisError as exc:
            raise _failed("put_tx_ref", key, exc) from exc

    def get_pair(
        self, card_id: str, terminal_id: str
    ) -> tuple[CardState | None, TerminalState | None]:
        """The card's and the terminal's records in one round trip (after any deferred writes)."""
        card_key, terminal_key = self._card + card_id, self._terminal + terminal_id
        ((raw_card, raw_terminal),) = self._pipeline(
            "get_pair", card_key, [("MGET", card_key, terminal_key)]
        )
        return _decode_card(card_key, raw_card), _decode_terminal(terminal_key, raw_terminal)

    async def fetch_pair(
        self, card_id: str, terminal_id: str
    ) -> tuple[CardState | None, TerminalState | None]:
        """``get_pair`` without blocking the loop: one round trip on the pipe, carrying the
        writes deferred before it, while the loop serves other requests."""
        card_key, terminal_key = self._card + card_id, self._terminal + terminal_id
        ((raw_card, raw_terminal),) = await self._pipeline_async(
            "get_pair", card_key, [("MGET", card_key, terminal_key)]
        )
        return _decode_card(card_key, raw_card), _decode_terminal(terminal_key, raw_terminal)

    def get_event(self, card_id: str, terminal_id: str, transaction_id: str) -> EventRecords:
        """The card's and the terminal's records and the id's reference, in one round trip
        (after any deferred writes)."""
        keys = self._event_keys(card_id, terminal_id, transaction_id)
        ((raw_card, raw_terminal, raw_ref),) = self._pipeline(
            "get_event", keys[0], [("MGET", *keys)]
        )
        return _decode_event(keys, raw_card, raw_terminal, raw_ref)

    async def fetch_event(
        self, card_id: str, terminal_id: str, transaction_id: str
    ) -> EventRecords:
        """``get_event`` without blocking the loop (see ``fetch_pair``)."""
        keys = self._event_keys(card_id, terminal_id, transaction_id)
        ((raw_card, raw_terminal, raw_ref),) = await self._pipeline_async(
            "get_event", keys[0], [("MGET", *keys)]
        )
        return _decode_event(keys, raw_card, raw_terminal, raw_ref)

    def _event_keys(
        self, card_id: str, terminal_id: str, transaction_id: str
    ) -> tuple[str, str, str]:
        return self._card + card_id, self._terminal + terminal_id, self._txref + transaction_id

    async def fetch_tx_ref(self, transaction_id: str) -> TxRef | None:
        """``get_tx_ref`` without blocking the loop (see ``fetch_pair``)."""
        key = self._txref + transaction_id
        (raw,) = await self._pipeline_async("get_tx_ref", key, [("GET", key)])
        return None if raw is None else _decode_ref(key, raw)

    async def exchange(self, operation: str, key: str, commands: Sequence[_Command]) -> list[Any]:
        """Send ``commands`` on the pipe, behind the deferred writes; their replies.

        For other keys under the prefix that ride this connection (``decide.claims``);
        ``operation`` and ``key`` name what failed in a ``StoreError``.
        """
        return await self._pipeline_async(operation, key, commands)

    def attach(self, command: _Command) -> asyncio.Future[Any]:
        """Send ``command`` with the next round trip on the pipe (a fetch, an ``exchange``
        or a flush), after its writes and ahead of its reads; the future gets the reply,
        or ``StoreError`` if Redis refuses it or the trip fails. So a caller about to fetch
        adds a command of its own to that fetch's round trip. Call on the loop."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(mark_retrieved)
        self._attached.append((command, future))
        return future

    def defer_write(self, command: _Command) -> None:
        """Send the write ``command`` with the next round trip on the pipe (after a fetch or
        an ``exchange`` made it), as ``put_event``'s writes go."""
        self._defer((command,))

    def put_event(self, event: StateWrite) -> None:
        """Write card, terminal and reference in one round trip (a pipeline, not atomic).

        Deferred to the next round trip when ``write_delay_s`` > 0 and an event loop runs
        (see the module's docstring).
        """
        group = self._event_commands(event)
        if self._pipe is not None:
            self._defer(group)
            return
        self._deferred.append(group)
        if self.write_delay_s <= 0.0 or len(self._deferred) > MAX_DEFERRED:
            self._write_deferred_now()
            return
        if self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to flush later: write through
                self._write_deferred_now()
                return
            self._flush_timer = loop.call_later(self.write_delay_s, self._flush_when_due)

    def _defer(self, group: _Group) -> None:
        """On the async path: hold ``group`` for the next round trip on the pipe, which a
        timer sends after ``write_delay_s`` if no fetch comes first. Past ``MAX_DEFERRED``
        (Redis unreachable for a while) the oldest writes are dropped, and StoreError says so.
        """
        self._deferred.append(group)
        if self._flush_timer is None and self._loop is not None:
            self._flush_timer = self._loop.call_later(self.write_delay_s, self._flush_when_due)
        overflow = len(self._deferred) - MAX_DEFERRED
        if overflow > 0:
            del self._deferred[:overflow]
            raise StoreError(
                f"Redis writes lost: {overflow} held past the bound of {MAX_DEFERRED} while"
                " Redis did not answer"
            )

    def _write_deferred_now(self) -> None:
        try:
            self.flush()
        except StoreError:
            # Nothing later will carry these: the caller hears of the loss now.
            self._deferred.clear()
            raise

    def _flush_when_due(self) -> None:
        self._flush_timer = None
        if self._closed:
            return
        if self._pipe is not None:
            task = asyncio.ensure_future(self._flush_async())
            self._flushing.add(task)  # a strong reference until it ends
            task.add_done_callback(self._flushing.discard)
            return
        # A failure keeps the writes deferred; the next read carries them and reports
        # the failure (as StoreError) if Redis is still failing.
        with contextlib.suppress(StoreError):
            self.flush()

    async def _flush_async(self) -> None:
        if self._deferred:
            # A failure keeps the writes (see ``_settle``); the next fetch reports it.
            with contextlib.suppress(StoreError):
                await self._pipeline_async("put_event", self._first_deferred_key(), ())

    def _first_deferred_key(self) -> str:
        """The key the first deferred write sets, to name in an error."""
        return str(self._deferred[0][0][1])

    def _async_pipe(self) -> RedisPipe:
        """The pipe, made on the first fetch; from then on writes go through it, in order."""
        if self._pipe is None:
            kwargs = self.client.connection_pool.connection_kwargs
            self._pipe = RedisPipe(
                kwargs.get("host", "127.0.0.1"),
                int(kwargs.get("port", 6379)),
                timeout_s=float(kwargs.get("socket_timeout") or 1.0),
                db=int(kwargs.get("db", 0)),
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                # A new connection (first, or after Redis restarted) loads the script first,
                # so the transaction writes' EVALSHA finds it.
                setup=[("SCRIPT", "LOAD", _PUT_REF_SCRIPT)],
            )
            self._loop = asyncio.get_running_loop()
        return self._pipe

    def _close_pipe(self) -> None:
        pipe, loop = self._pipe, self._loop
        if pipe is None or loop is None or loop.is_closed():
            return
        if loop.is_running() and not _on_loop_thread(loop):
            loop.call_soon_threadsafe(pipe.close)
        else:
            pipe.close()

    async def _pipeline_async(
        self, operation: str, key: str, reads: Sequence[_Command]
    ) -> list[Any]:
        """The deferred writes, then ``reads``, in one exchange on the pipe; the replies to
        ``reads``. The writes leave the store's hands only once Redis has answered them
        (``_settle``), whatever becomes of the caller."""
        pipe = self._async_pipe()
        try:
            link = await pipe.connected()
        except RedisPipeError as exc:
            raise self._fail_attached(self._attached, _failed(operation, key, exc)) from exc
        # Nothing awaits from here to the send, so writes and reads keep their order.
        batch, self._deferred = self._deferred, []
        attached, self._attached = self._attached, []
        commands = [command for group in batch for command in group]
        writes = len(commands)
        commands.extend(command for command, _ in attached)
        commands.extend(reads)
        future = link.send(commands)
        if batch:
            self._inflight.append(batch)
            future.add_done_callback(partial(self._settle, batch, writes))
        try:
            replies = await pipe.wait(link, future)
        except RedisPipeError as exc:
            raise self._fail_attached(attached, _failed(operation, key, exc)) from exc
        extra = replies[writes : writes + len(attached)]
        for (command, waiting), reply in zip(attached, extra, strict=True):
            if waiting.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiting.set_exception(_failed(str(command[0]), str(command[1]), reply))
            else:
                waiting.set_result(reply)
        own = replies[:writes] + replies[writes + len(attached) :]
        error = next((reply for reply in own if isinstance(reply, hiredis.ReplyError)), None)
        if error is not None:
            raise _failed(operation, key, error)
        return replies[len(commands) - len(reads) :]

    def _fail_attached(
        self, attached: list[tuple[_Command, asyncio.Future[Any]]], error: StoreError
    ) -> StoreError:
        """Hand ``error`` to the attached commands' callers (they are not sent again)."""
        for _, waiting in attached:
            if not waiting.done():
                waiting.set_exception(error)
        attached.clear()
        return error

    def _settle(self, batch: list[_Group], writes: int, future: asyncio.Future[list[Any]]) -> None:
        """Account for a batch of writes once the pipe has its answer.

        Answered and taken: the batch is done. Failed with the connection, or a write
        refused (say NOSCRIPT after a SCRIPT FLUSH): this batch and every later one go again,
        in order, ahead of newer writes, and on a refusal the connection is dropped so the
        later batches cannot land first (a new connection loads the script again). The
        batches are whole records, so sending one again in order changes nothing.
        """
        if not any(sent is batch for sent in self._inflight):
            return  # an earlier batch's failure already put this one back
        failed = future.cancelled() or future.exception() is not None
        if not failed:
            replies = future.result()[:writes]
            failed = any(isinstance(reply, hiredis.ReplyError) for reply in replies)
            if failed and self._pipe is not None:
                self._pipe.close()
        if failed:
            # Replies come in order, so every batch before this one has settled already.
            again = [group for sent in self._inflight for group in sent]
            self._inflight.clear()
            self._deferred[:0] = again
            return
        self._inflight = deque(sent for sent in self._inflight if sent is not batch)

    def _pipeline(self, operation: str, key: str, reads: Sequence[_Command]) -> list[Any]:
        """The deferred writes, then ``reads``, in one round trip; the replies to ``reads``.

        The deferred writes leave the queue only once Redis has answered. A Redis that lost
        the script (restarted, SCRIPT FLUSH) gets it again and the commands once more: the
        writes are idempotent.
        """
        groups = list(self._deferred)
        commands = [command for group in groups for command in group]
        commands.extend(reads)
        replies = self._round_trip(operation, key, commands)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            try:
                self.client.script_load(_PUT_REF_SCRIPT)
            except RedisError as exc:
                raise _failed(operation, key, exc) from exc
            replies = self._round_trip(operation, key, commands)
        error = next((reply for reply in replies if isinstance(reply, ResponseError)), None)
        if error is not None:
            raise _failed(operation, key, error) from error
        del self._deferred[: len(groups)]
        return replies[len(commands) - len(reads) :]

    def _round_trip(self, operation: str, key: str, commands: Sequence[_Command]) -> list[Any]:
        """Send ``commands`` in one write and read every reply (an error reply as its error).

        redis-py's ``Pipeline`` does the same with about twice the CPU (its per-command
        bookkeeping: 160-190 µs against 70-80 µs for a transaction's four commands).
        """
        pool = self.client.connection_pool
        try:
            # Any: redis-py leaves the connection's methods unannotated.
            connection: Any = pool.get_connection()
        except RedisError as exc:
            raise _failed(operation, key, exc) from exc
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as exc:  # read whole: the connection stays in step
                    replies.append(exc)
        except RedisError as exc:
            connection.disconnect()  # replies may be left unread: never reuse it
            raise _failed(operation, key, exc) from exc
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return replies

    def _event_commands(self, event: StateWrite) -> tuple[_Command, _Command, _Command]:
        ref = event.ref
        ttl_ms = max((event.ref_expires_at - ref.ts) // _MICROS_PER_MILLI, MIN_REF_TTL_MS)
        return (
            ("SET", self._card + event.card_id, orjson.dumps(event.card.encode())),
            ("SET", self._terminal + event.terminal_id, orjson.dumps(event.terminal.encode())),
            (
                "EVALSHA",
                self._put_ref.sha,
                2,
                self._txref + event.transaction_id,
                self._expiry,
                orjson.dumps(list(ref)),
                event.ref_expires_at,
                ttl_ms,
                event.transaction_id,
                ref.ts,
                EXPIRE_BATCH,
                self._txref,
            ),
        )

    def _get(self, operation: str, key: str) -> bytes | None:
        try:
            return cast("bytes | None", self.client.get(key))
        except RedisError as exc:
            raise _failed(operation, key, exc) from exc

    def _set(self, operation: str, key: str, value: bytes) -> None:
        try:
            self.client.set(key, value)
        except RedisError as exc:
            raise _failed(operation, key, exc) from exc


def _decode_card(key: str, raw: bytes | None) -> CardState | None:
    try:
        return None if raw is None else CardState.decode(orjson.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise _failed("decoding a card", key, exc) from exc


def _decode_terminal(key: str, raw: bytes | None) -> TerminalState | None:
    try:
        return None if raw is None else TerminalState.decode(orjson.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise _failed("decoding a terminal", key, exc) from exc


def _decode_event(
    keys: tuple[str, str, str], card: bytes | None, terminal: bytes | None, ref: bytes | None
) -> EventRecords:
    return EventRecords(
        _decode_card(keys[0], card),
        _decode_terminal(keys[1], terminal),
        None if ref is None else _decode_ref(keys[2], ref),
    )


def _decode_ref(key: str, raw: bytes) -> TxRef:
    try:
        terminal_id, ts, *card_id = orjson.loads(raw)
        return TxRef(str(terminal_id), int(ts), str(card_id[0]) if card_id else "")
    except (ValueError, TypeError, IndexError) as exc:
        raise _failed("decoding a transaction reference", key, exc) from exc


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
