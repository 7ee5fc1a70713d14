"""One pipelined Redis connection on the event loop, for the decision path's round trips.

A caller sends its commands in one write and awaits their replies, which Redis returns in
order on the connection. Callers share the connection without waiting for each other: while
one awaits its replies, the loop serves other requests, and what they send joins the same
stream. Nothing here blocks the loop. hiredis (the C parser redis-py uses) packs the
commands and parses the replies; redis-py's own asyncio client was measured at over 1 ms of
CPU per transaction, more than the whole decision (see ``features.redis_state``).

Failures: a refused or lost connection and a malformed stream fail *every* exchange in
flight with :class:`RedisPipeError` and close the connection: the replies still to come
could no longer be matched to their exchanges. The next exchange connects again, and runs
the ``setup`` commands (AUTH, SELECT, SCRIPT LOAD) before anything else.

A reply later than ``timeout_s`` fails only the caller waiting for it: its exchange stays
in the stream and its replies are read (and handed to whoever holds its future) when they
come, so a short stall of Redis costs the callers it outlasted, not every one in flight.
Only when the oldest exchange has waited ``stale_s`` is the connection given up as hung,
failing all. An error *reply* fails nothing: it is returned in its place, as
``hiredis.ReplyError``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis

Command = tuple[str | bytes | int, ...]

_GRACE_TURNS = 2
"""Loop turns a timed-out exchange waits for a reply already received but not yet read."""


class RedisPipeError(ConnectionError):
    """The connection failed: refused, lost, too slow, or a stream that cannot be read."""


@dataclass(slots=True)
class _Exchange:
    count: int
    future: asyncio.Future[list[Any]]
    sent_at: float
    replies: list[Any] = field(default_factory=list)


class _Link(asyncio.Protocol):
    """One TCP connection: exchanges in the order they were written, replies matched in turn."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._reader = hiredis.Reader()
        self._exchanges: deque[_Exchange] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def send(self, commands: Sequence[Command]) -> asyncio.Future[list[Any]]:
        """Write ``commands`` now; the future of their replies."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if self.closed or self.transport is None:
            future.set_exception(RedisPipeError("the connection is closed"))
            return future
        # A caller that timed out no longer awaits its future: mark a later failure seen,
        # so the loop does not report it as never retrieved.
        future.add_done_callback(mark_retrieved)
        self._exchanges.append(_Exchange(len(commands), future, loop.time()))
        # (hiredis's stub types the command as a one-element tuple; any length packs.)
        packed = [hiredis.pack_command(command) for command in commands]  # type: ignore[arg-type]
        self.transport.write(b"".join(packed))
        if not commands:  # nothing to wait for
            self._exchanges.pop()
            future.set_result([])
        return future

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisPipeError(f"Redis sent a reply that cannot be read: {exc}"))
                return
            if reply is False:  # no complete reply yet (RESP2 has no boolean replies)
                return
            if not self._exchanges:
                self.fail(RedisPipeError("Redis sent a reply nothing asked for"))
                return
            exchange = self._exchanges[0]
            exchange.replies.append(reply)
            if len(exchange.replies) == exchange.count:
                self._exchanges.popleft()
                if not exchange.future.done():
                    exchange.future.set_result(exchange.replies)

    def oldest_wait_s(self) -> float:
        """How long the oldest unanswered exchange has waited (0 if none)."""
        if not self._exchanges:
            return 0.0
        return asyncio.get_running_loop().time() - self._exchanges[0].sent_at

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        self.fail(RedisPipeError(f"the connection to Redis closed{reason}"))

    def fail(self, error: RedisPipeError) -> None:
        """Fail every exchange in flight with ``error`` and close the connection."""
        self.closed = True
        exchanges, self._exchanges = self._exchanges, deque()
        for exchange in exchanges:
            if not exchange.future.done():
                exchange.future.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class RedisPipe:
    """A connection to one Redis, made on first use and again after a failure."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        setup: Sequence[Command] = (),
        stale_s: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.stale_s = max(1.0, 50 * timeout_s) if stale_s is None else stale_s
        first: list[Command] = []
        if password is not None:
            first.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            first.append(("SELECT", db))
        self._setup = (*first, *setup)
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None

    async def connected(self) -> _Link:
        """The open connection, connecting first if there is none (one attempt at a time:
        callers arriving meanwhile wait for it, in order)."""
        link = self._link
        if link is not None and not link.closed:
            return link
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def wait(self, link: _Link, future: asyncio.Future[list[Any]]) -> list[Any]:
        """The replies of ``future`` (``link.send``'s), within the timeout.

        A timeout fails this caller only, unless the connection has gone stale (see the
        module). Cancelling the caller leaves ``future`` alone, so bookkeeping attached to it
        still runs when the replies come.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            # On a busy loop the timer can fire before the loop has read a reply that is
            # already there (a stalled loop, not a slow Redis): let it poll once more.
            for _ in range(_GRACE_TURNS):
                if future.done():
                    break
                await asyncio.sleep(0)
            if future.done() and not future.cancelled() and future.exception() is None:
                return future.result()
            error = RedisPipeError(f"Redis did not answer within {self.timeout_s * 1000:.0f} ms")
            if link.oldest_wait_s() >= self.stale_s:
                link.fail(RedisPipeError(f"Redis answered nothing for {self.stale_s:g} s"))
            raise error from None

    def close(self) -> None:
        """Close the connection; exchanges in flight fail."""
        if self._link is not None:
            self._link.fail(RedisPipeError("the pipe was closed"))
            self._link = None

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        link: _Link | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                _, link = await loop.create_connection(_Link, self.host, self.port)
                replies = await link.send(self._setup) if self._setup else []
            failed = next((r for r in replies if isinstance(r, hiredis.ReplyError)), None)
            if failed is not None:
                raise RedisPipeError(f"Redis refused the connection's set-up: {failed}")
        except (OSError, TimeoutError) as exc:  # RedisPipeError is an OSError too
            error = RedisPipeError(
                f"cannot connect to Redis at {self.host}:{self.port}: {type(exc).__name__}: {exc}"
            )
            if link is not None:
                link.fail(error)
            raise error from exc
        self._link = link
        return link


def mark_retrieved(future: asyncio.Future[Any]) -> None:
    """A done callback: the future's error counts as seen, so a future nobody awaits (its
    caller gave up) leaves no 'exception was never retrieved' warning."""
    if not future.cancelled():
        future.exception()
