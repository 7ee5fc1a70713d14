"""Faults on demand for tests: a loopback TCP proxy whose link to a real service can be cut.

A test points a client at the proxy instead of the shared PostgreSQL or Redis, then calls
:meth:`TcpProxy.cut` to make that service "stop" mid-run for this client alone: live
connections are dropped and new ones are reset, while the shared server keeps serving
everyone else. :meth:`TcpProxy.restore` brings the link back.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 65536
_CONNECT_TIMEOUT_S = 2.0


class TcpProxy:
    """A cuttable TCP proxy on 127.0.0.1 in front of ``target_host:target_port``.

    Each connection is carried by two threads, one per direction, so neither side can stall
    the other; the proxy runs from ``__enter__`` (or :meth:`start`) to ``__exit__``.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._is_cut = False
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def is_cut(self) -> bool:
        """Whether the link is cut now."""
        return self._is_cut

    def url_for(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (user and path kept)."""
        parts = urlsplit(url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> None:
        """Begin accepting connections."""
        self._acceptor.start()

    def cut(self) -> None:
        """Drop every live connection and reset new ones until :meth:`restore`.

        Returns once every live connection is closed, so a client's next use of one fails.
        """
        with self._lock:
            self._is_cut = True
            links = list(self._links)
        for link in links:
            link.drop()
        for link in links:
            link.closed.wait()

    def restore(self) -> None:
        """Carry connections again."""
        with self._lock:
            self._is_cut = False

    def stop(self) -> None:
        """Drop every connection and stop listening."""
        self.cut()
        self._stopping = True
        if self._acceptor.is_alive():
            # accept() is not woken by closing the socket on Linux, so connect to wake it.
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
            self._acceptor.join()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping:
                _reset(client)
                return
            if self._is_cut:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT_S)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            # Pass small messages on at once, as a direct connection would (no Nagle delay).
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, upstream, self._forget)
            with self._lock:
                # cut() may have run since the check above; it must not miss this link.
                if self.is_cut:
                    link.drop()
                self._links.add(link)
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


class _Link:
    """One proxied connection: a client socket, its upstream socket and their two pumps."""

    def __init__(
        self, client: socket.socket, upstream: socket.socket, forget: Callable[[_Link], None]
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        self._forget = forget
        self._lock = threading.Lock()
        self._pumps_left = 2
        self._pumps = (
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True),
        )

    def start(self) -> None:
        for pump in self._pumps:
            pump.start()

    def drop(self) -> None:
        """Break both sides; the pumps wake, end, and close the sockets with a reset."""
        for sock in (self.client, self.upstream):
            _set_reset_on_close(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
            # An orderly end on one side is passed on, and the other direction keeps going.
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop()
        finally:
            self._pump_done()

    def _pump_done(self) -> None:
        with self._lock:
            self._pumps_left -= 1
            last = self._pumps_left == 0
        if last:
            # Closed only once both pumps are out, so no thread uses a closed socket.
            self.client.close()
            self.upstream.close()
            self._forget(self)
            self.closed.set()


def _set_reset_on_close(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout: close() sends RST, like a crashed peer, not FIN.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _reset(sock: socket.socket) -> None:
    _set_reset_on_close(sock)
    sock.close()
