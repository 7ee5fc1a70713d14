"""A scripted keep-alive HTTP/1.1 server for the load generator's tests.

Each request gets what ``script(n)`` says for its number ``n`` (from 0): a status and a JSON
body, a delay before answering, whether to close the connection after answering (as a
server's keep-alive timeout does, without saying so), or ``None`` to close it without one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: object = None
    delay_s: float = 0.0
    close: bool = False


Script = Callable[[int], Reply | None]


class FakeServer:
    """Serves ``script`` on 127.0.0.1; ``port`` is set once started."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received = 0
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                reply = self.script(self.received)
                self.received += 1
                if reply is None:
                    break
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                body = orjson.dumps(reply.body)
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%b" % (reply.status, len(body), body)
                )
                if reply.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeServer]:
        """Listen on a free port for the duration of the ``async with``."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self
