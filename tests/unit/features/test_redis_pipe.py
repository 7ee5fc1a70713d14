"""The pipelined Redis connection: replies matched in order, timeouts that mean Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import uvloop

from fraudops.features.redis_pipe import RedisPipe, RedisPipeError
from tests.services import REDIS_URL, require_port

T = TypeVar("T")


def _pipe(timeout_s: float) -> RedisPipe:
    url = urlsplit(REDIS_URL)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    require_port("Redis", host, port)
    return RedisPipe(host, port, timeout_s=timeout_s, db=int(url.path.strip("/") or 0))


def _on_uvloop(run: Callable[[], Awaitable[T]]) -> T:
    """Run on uvloop, as the service does (its timers run before I/O in a loop turn)."""
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def test_a_reply_read_late_by_a_stalled_loop_is_not_a_timeout() -> None:
    """The loop held up past the timeout while Redis answered: the reply is still returned."""
    pipe = _pipe(timeout_s=0.05)

    async def stalled() -> list[Any]:
        link = await pipe.connected()
        future = link.send([("PING",)])
        asyncio.get_running_loop().call_soon(time.sleep, 0.2)  # blocks the loop, not Redis
        try:
            return await pipe.wait(link, future)
        finally:
            pipe.close()

    assert [b"PONG"] == _on_uvloop(stalled)


def test_a_cancelled_caller_leaves_the_stream_in_step() -> None:
    """The first caller gives up; the second still gets its own replies, not the first's."""
    pipe = _pipe(timeout_s=1.0)

    async def two_callers() -> tuple[list[Any], list[Any]]:
        link = await pipe.connected()
        first = link.send([("ECHO", "first")])
        second = link.send([("ECHO", "second"), ("ECHO", "third")])
        waiting = asyncio.ensure_future(pipe.wait(link, first))
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        try:
            return await pipe.wait(link, second), await first
        finally:
            pipe.close()

    later, abandoned = _on_uvloop(two_callers)
    assert ([b"second", b"third"], [b"first"]) == (later, abandoned)


def test_nothing_listening_fails_fast_as_a_pipe_error() -> None:
    """A refused connection is a RedisPipeError at once, and the next exchange tries again."""
    pipe = RedisPipe("127.0.0.1", 1, timeout_s=1.0)

    async def connect_twice() -> float:
        started = time.monotonic()
        for _ in range(2):
            with pytest.raises(RedisPipeError, match="cannot connect"):
                await pipe.connected()
        return time.monotonic() - started

    assert _on_uvloop(connect_twice) < 1.0
