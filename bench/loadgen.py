"""An open-loop HTTP load generator: fixed arrival rates, latency from the intended send time.

Open loop: the arrival times are fixed before the run (a Poisson process, or evenly spaced)
and never wait for responses. A request that cannot leave at its time, because every
connection is busy, waits in a client-side queue, and its latency still counts from the time
it was meant to leave; a stalled server therefore shows in the percentiles instead of quietly
slowing the generator down (no coordinated omission). A request may also leave up to
``SEND_EARLY_S`` before its time, since the event loop's timers have millisecond resolution;
its latency then counts from when it actually left.

The client is its own minimal HTTP/1.1 keep-alive client over asyncio streams, one
persistent connection per worker. It writes pre-built requests and reads only the status
line, ``Content-Length`` and the small JSON body (orjson). On the 2-core bench machine a
general client costs too much CPU per request, and every CPU millisecond the generator takes
is taken from the server it measures. Measured against the bare app (bench/bare_app.py) at
500 rps, Poisson, 20 s, 64 connections, uvloop, 3 runs each, same open-loop schedule:
``httpx2.AsyncClient`` (the dev dependency) took 1.50-1.54 CPU-s per 1000 requests and
could not keep up (p50 330-410 ms, one run ended in PoolTimeout); this client took
0.27-0.29 CPU-s per 1000 (p50 1.6-1.9 ms). In full 60 s runs it takes 0.35-0.42 at 200 rps,
0.26 at 500 and 0.16-0.20 at 1000, where the per-wakeup costs are shared by more requests:
a fifth of one core at 1000 rps. A timer per request for the timeout cost ~10 % of that,
hence one watchdog sweep instead.

    result = run(run_load("127.0.0.1", 8000, "/v1/transactions", bodies, rate_rps=500,
                          duration_s=60, headers={"X-API-Key": key}))
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import time
from array import array
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

import orjson

SEND_EARLY_S = 0.001
"""How early a request may leave: the event loop's timer resolution (uvloop's is 1 ms)."""

Arrivals = Literal["poisson", "uniform"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class RunResult:
    """What one fixed-rate run measured, over its measured (post-warm-up) requests.

    ``sent`` requests went out, ``completed`` got a whole HTTP response (any status).
    ``status_counts`` maps HTTP statuses (``"200"``) and the failures without one
    (``"timeout"``, ``"transport"``, ``"bad_body"``, ``"unfinished"``: still queued or in
    flight when the run ended) to counts; ``errors`` counts every outcome but a 2xx with a
    JSON body. Latency percentiles (nearest rank, ms) are over completed requests.
    ``sources``, ``degraded`` and ``shed`` come from the 2xx JSON bodies' ``source``,
    ``degraded`` and ``degraded_reason`` fields. ``send_lag_*`` say how late requests left
    (client queueing and scheduling); ``client_cpu_s_per_1000`` is the generator's own CPU
    time per 1000 requests, warm-up included, and ``server_cpu_s_per_1000`` the server
    process's, when the caller measured it (``None`` otherwise).
    """

    rate_rps: float
    duration_s: float
    sent: int
    completed: int
    errors: int
    status_counts: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    achieved_rps: float
    sources: dict[str, int]
    degraded: int
    shed: int
    send_lag_p50_ms: float
    send_lag_p99_ms: float
    client_cpu_s_per_1000: float
    server_cpu_s_per_1000: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values, with its rates.

        ``error_rate`` is over the measured requests; ``degraded_rate``, ``fallback_rate``
        (answered by anything but ``source == "model"``) and ``shed_rate`` are over the 2xx
        answers. NaN, for "nothing measured", becomes None.
        """
        requests = round(self.rate_rps * self.duration_s)
        ok = sum(n for key, n in self.status_counts.items() if key.startswith("2"))
        fallback = sum(n for source, n in self.sources.items() if source != "model")
        values = asdict(self) | {
            "error_rate": self.errors / requests if requests else math.nan,
            "degraded_rate": self.degraded / ok if ok else math.nan,
            "fallback_rate": fallback / ok if ok else math.nan,
            "shed_rate": self.shed / ok if ok else math.nan,
        }
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in values.items()
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 < q ≤ 100) of ascending values by nearest rank; NaN if empty.

    Nearest rank is the smallest value with at least ``q`` % of the values at or below it:
    always an observed latency, never an interpolation between two.
    """
    if not 0.0 < q <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    # The small tolerance keeps q * n / 100 = 99.000…01 from rounding up a whole rank.
    rank = math.ceil(q * n / 100.0 - 1e-9)
    return float(sorted_values[min(max(rank, 1), n) - 1])


def arrival_offsets(
    rate_rps: float, duration_s: float, *, arrivals: Arrivals = "poisson", seed: int = 0
) -> list[float]:
    """The intended send times, in seconds from the start, of ``rate × duration`` requests.

    ``uniform`` spaces them evenly; ``poisson`` draws them as a Poisson process with exactly
    that many arrivals (given its count, a Poisson process's arrival times are independent
    and uniform over the window), so every run of a rate sends the same number of requests.
    """
    if rate_rps <= 0 or duration_s < 0:
        raise ValueError(
            f"need a positive rate and a non-negative duration: {rate_rps}, {duration_s}"
        )
    count = round(rate_rps * duration_s)
    if arrivals == "uniform":
        return [i / rate_rps for i in range(count)]
    rng = random.Random(seed)
    return sorted(rng.random() * duration_s for _ in range(count))


class _ResponseError(Exception):
    """A response this client cannot read (no Content-Length, a bad status line)."""


class _Connection:
    """One keep-alive HTTP/1.1 connection; reopened on the next request after a failure.

    ``deadline`` is when the request in flight times out (infinity when idle); ``expire``
    aborts the connection so that the waiting read fails at once, and marks it timed out.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.deadline = math.inf
        self.expired = False

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect (Nagle off: a request is one small write that must leave at once)."""
        reader, writer = await asyncio.open_connection(self._host, self._port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stream = reader, writer
        return self._stream

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self._stream is not None:
            self._stream[1].close()
        self._stream = None
        self.expired = False

    def expire(self) -> None:
        """Give up on the request in flight: its read fails with end of stream."""
        self.expired = True
        if self._stream is not None:
            self._stream[1].transport.abort()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one whole request; the response's status and body."""
        if self._stream is not None and self._stream[0].at_eof():
            # The server closed the idle connection (its keep-alive timeout): the request
            # would be lost on it, so it goes on a new one.
            self.close()
        reader, writer = self._stream or await self.open()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise _ResponseError(f"unexpected status line {head[:20]!r}")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise _ResponseError("response without Content-Length")
        length = int(lower[at + 17 : lower.index(b"\r\n", at + 17)])
        body = await reader.readexactly(length) if length else b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body


class _Tally:
    """Counts and latencies of the measured requests, and when every request has finished."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.measured_finished = 0
        self.sent = 0
        self.latencies = array("d")
        self.lags = array("d")
        self.last_done = 0.0
        self.status_counts: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.degraded = 0
        self.shed = 0
        self.all_done = asyncio.Event()

    def count(self, outcome: str) -> None:
        self.status_counts[outcome] = self.status_counts.get(outcome, 0) + 1

    def response(self, began: float, done: float, status: int, body: bytes) -> None:
        self.latencies.append(done - began)
        self.last_done = done
        if not 200 <= status < 300:
            self.count(str(status))
            return
        try:
            answer = orjson.loads(body)
            source = answer.get("source")
            degraded = answer.get("degraded") is True
            reason = answer.get("degraded_reason") or ""
        except (orjson.JSONDecodeError, AttributeError):
            self.count("bad_body")
            return
        self.count(str(status))
        if source is not None:
            self.sources[str(source)] = self.sources.get(str(source), 0) + 1
        self.degraded += degraded
        self.shed += source == "shed" or "shed" in str(reason)

    def finish(self, measured: bool) -> None:
        self.finished += 1
        self.measured_finished += measured
        if self.finished == self.total:
            self.all_done.set()


async def _work(
    connection: _Connection,
    queue: asyncio.Queue[tuple[float, bool, bytes]],
    tally: _Tally,
    timeout_s: float,
) -> None:
    perf = time.perf_counter
    while True:
        intended, measured, request = await queue.get()
        sent = perf()
        if measured:
            tally.sent += 1
            tally.lags.append(max(sent - intended, 0.0))
        connection.deadline = sent + timeout_s
        try:
            status, body = await connection.exchange(request)
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError, _ResponseError):
            # EOFError covers IncompleteReadError (peer closed mid-response, or the watchdog
            # aborted it); ValueError a non-numeric status or length.
            if measured:
                tally.count("timeout" if connection.expired else "transport")
            connection.close()
        else:
            if measured:
                tally.response(min(intended, sent), perf(), status, body)
        connection.deadline = math.inf
        tally.finish(measured)


async def _watch(pool: Sequence[_Connection], timeout_s: float) -> None:
    # One sweep every quarter timeout instead of a timer per request, which cost ~10 % of
    # the generator's CPU: a timeout is then noticed up to 25 % late, which is fine for a
    # limit meant to catch stuck requests, not to measure them.
    while True:
        await asyncio.sleep(timeout_s / 4)
        now = time.perf_counter()
        for connection in pool:
            if connection.deadline < now:
                connection.expire()


def _request_head(host: str, port: int, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


async def run_load(
    host: str,
    port: int | Sequence[int],
    path: str,
    bodies: Iterator[bytes],
    *,
    rate_rps: float,
    duration_s: float,
    headers: Mapping[str, str],
    connections: int = 64,
    warmup_s: float = 2.0,
    arrivals: Arrivals = "poisson",
    seed: int = 0,
    timeout_s: float = 5.0,
) -> RunResult:
    """POST ``bodies`` (JSON) to ``path`` at ``rate_rps`` for ``warmup_s`` + ``duration_s``.

    Only the requests after the warm-up are measured. ``connections`` are opened before the
    first request (spread evenly over the ports, when ``port`` names several servers: the
    replicas behind a load balancer); a request still unanswered after ``timeout_s`` counts
    as a timeout.
    """
    warm = arrival_offsets(rate_rps, warmup_s, arrivals=arrivals, seed=seed)
    timed = arrival_offsets(rate_rps, duration_s, arrivals=arrivals, seed=seed + 1)
    schedule = [(t, False) for t in warm] + [(warmup_s + t, True) for t in timed]
    tally = _Tally(len(schedule))
    queue: asyncio.Queue[tuple[float, bool, bytes]] = asyncio.Queue()
    ports = [port] if isinstance(port, int) else list(port)
    pool = [_Connection(host, ports[n % len(ports)]) for n in range(connections)]
    await asyncio.gather(*(c.open() for c in pool))
    workers = [asyncio.create_task(_work(c, queue, tally, timeout_s)) for c in pool]
    workers.append(asyncio.create_task(_watch(pool, timeout_s)))
    head = _request_head(host, ports[0], path, headers)
    perf = time.perf_counter
    cpu_began = time.process_time()
    start = perf() + 0.01
    try:
        for offset, measured in schedule:
            body = next(bodies)
            request = b"%b%d\r\n\r\n%b" % (head, len(body), body)
            intended = start + offset
            # Sleeping less than a timer tick would return at once and spin the CPU.
            while (wait := intended - perf()) > SEND_EARLY_S:
                await asyncio.sleep(wait)
            queue.put_nowait((intended, measured, request))
        ends = start + (schedule[-1][0] if schedule else 0.0) + timeout_s + 1.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.all_done.wait(), max(ends - perf(), 0.0))
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for connection in pool:
            connection.close()
    cpu = time.process_time() - cpu_began
    unfinished = len(timed) - tally.measured_finished
    if unfinished:
        tally.status_counts["unfinished"] = unfinished
    latencies = sorted(tally.latencies)
    lags = sorted(tally.lags)
    ok = sum(n for key, n in tally.status_counts.items() if key.isdigit() and key[0] == "2")
    window = max(duration_s, tally.last_done - (start + warmup_s))
    return RunResult(
        rate_rps=rate_rps,
        duration_s=duration_s,
        sent=tally.sent,
        completed=len(latencies),
        errors=len(timed) - ok,
        status_counts=dict(sorted(tally.status_counts.items())),
        p50_ms=percentile(latencies, 50) * 1000.0,
        p95_ms=percentile(latencies, 95) * 1000.0,
        p99_ms=percentile(latencies, 99) * 1000.0,
        max_ms=(latencies[-1] if latencies else math.nan) * 1000.0,
        achieved_rps=len(latencies) / window if window > 0 else math.nan,
        sources=dict(sorted(tally.sources.items())),
        degraded=tally.degraded,
        shed=tally.shed,
        send_lag_p50_ms=percentile(lags, 50) * 1000.0,
        send_lag_p99_ms=percentile(lags, 99) * 1000.0,
        client_cpu_s_per_1000=cpu / len(schedule) * 1000.0 if schedule else math.nan,
    )


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` on uvloop when it is installed (less CPU per request), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
