"""A private ``redis-server`` that a test may stop and start, to stage an outage mid-run.

The shared Redis must keep running for every other test, so fault tests start their own
server on a free loopback port, without persistence, in a temporary directory::

    with private_redis() as server:
        store = RedisFeatureState.from_url(server.url)
        server.pause()  # Redis hangs: calls time out
        server.resume()
        server.stop()   # Redis is gone: calls are refused
        server.start()  # back, empty, on the same port
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.services import free_port, require_program

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.01


def _answers_ping(port: int) -> bool:
    """Whether a Redis on ``port`` answers PING with PONG."""
    try:
        with socket.create_connection((_HOST, port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """One ``redis-server`` process on a fixed loopback port, stopped and started at will."""

    def __init__(self, program: str, port: int, directory: Path) -> None:
        self.program = program
        self.port = port
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (empty) and return once it answers PING."""
        if self.running:
            return
        self._log = (self.directory / "redis.log").open("ab")
        options = {
            "port": str(self.port),
            "bind": _HOST,
            "save": "",
            "appendonly": "no",
            "daemonize": "no",
            "dir": str(self.directory),
        }
        command = [self.program]
        for name, value in options.items():
            command += [f"--{name}", value]
        process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self._process = process
        deadline = time.monotonic() + _START_TIMEOUT_S
        # The server says nothing we can wait on but its log, so poll PING to a deadline.
        while not _answers_ping(self.port):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{self.log}")
            time.sleep(_POLL_INTERVAL_S)

    def stop(self) -> None:
        """Kill the server abruptly, as a crash would, and wait until it is gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open but nothing answers, like a hang."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is None:
            raise RuntimeError(f"redis-server on port {self.port} is not running")
        self._process.send_signal(signum)

    @property
    def log(self) -> str:
        """What the server has logged so far (for failure messages)."""
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A private, running ``redis-server``; skips (fails in CI) if the program is missing."""
    program = require_program("redis-server", "redis-server")
    with tempfile.TemporaryDirectory(prefix="fraudops-redis-") as directory:
        server = PrivateRedis(program, free_port(), Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()
