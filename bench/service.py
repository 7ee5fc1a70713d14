"""Load benchmark of the decision service on loopback at fixed arrival rates; prints JSON.

Builds a small realistic model (simulate → ingest → train), then replays the later
simulated transactions, in time order, as request bodies against, each for ``--duration``
seconds per rate in ``--rates``:

- ``bare``: bench/bare_app.py, FastAPI scoring one fixed feature row (the baseline);
- ``memory``: ``fraudops serve`` with in-memory feature state;
- ``overload``: the same in-memory service at ``--overload-factor`` × the highest rate whose
  p99 was ≤ 10 ms with no errors (the sustainable rate);
- ``redis``: ``fraudops serve`` with its feature state in Redis (127.0.0.1:6379, under a
  key prefix of its own, deleted at the end).

Each server is a separate process, loaded only once ``/readyz`` answers 200, stopped with
SIGTERM. The load generator (bench/loadgen.py) is open-loop, so latency counts from each
request's intended send time. Its connection pool is larger than the number of requests
the service admits at once (``service.max_in_flight``): twice as large for the rates, four
times for the overload. With a pool of exactly that size, a saturated service would never
see its excess, which would wait in the generator's queue instead of reaching the
service's load shedding. The machine is small, shared and noisy: compare the service
with the bare app of the same run (``ratios``), not with figures from another day.
Progress goes to stderr, the one JSON document to stdout.

    .venv/bin/python bench/service.py [--duration 60] [--rates 200,500,1000]
        [--overload-factor 3] [--skip-redis] [--out-json PATH] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import redis

from fraudops.features import build_feature_table, feature_definition
from fraudops.ingest import ingest_sources, load_mapping
from fraudops.lake import TRANSACTIONS_DIR, parquet_glob
from fraudops.learn.artifact import MANIFEST_FILE, load_model_dir
from fraudops.learn.jobs import train_model
from fraudops.settings import ServiceSettings
from fraudops.simulate import SimulationConfig, run_simulation
from loadgen import RunResult, run, run_load

PATH = "/v1/transactions"
BENCH = Path(__file__).resolve().parent
P99_TARGET_MS = {"memory": 10.0, "redis": 15.0}
"""The issue's targets at 500 rps; the memory one also defines the sustainable rate."""


@dataclass(frozen=True)
class DataPlan:
    """The simulated bank: a small handbook dataset, the model's window and what is replayed.

    The model trains on a week after 30 days of history (the longest window); the replay
    is every transaction after its training week, the days the model would have served.
    """

    customers: int = 2000
    terminals: int = 4000
    days: int = 60
    start: date = date(2018, 4, 1)
    seed: int = 11
    history_days: int = 30
    train_days: int = 7
    delay_days: int = 7

    @property
    def train_start(self) -> date:
        return self.start + timedelta(days=self.history_days)

    @property
    def replay_start(self) -> datetime:
        first = self.train_start + timedelta(days=self.train_days)
        return datetime(first.year, first.month, first.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC) + (
            timedelta(days=self.days)
        )


Row = tuple[str, datetime, str, str, float, float | None, float | None]


@dataclass(frozen=True)
class Prepared:
    """The model directory, the transactions to replay and the bare app's fixed row."""

    model_dir: Path
    rows: list[Row]
    fixed_row: list[float | None]
    summary: dict[str, Any]


def say(message: str) -> None:
    """Progress on stderr, so stdout stays one JSON document."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare(workdir: Path, plan: DataPlan) -> Prepared:
    """Simulate, ingest and train (unless ``workdir`` already holds a model); read the replay
    rows and the bare app's fixed feature row: the first replayed transaction's."""
    lake, model_dir = workdir / "lake", workdir / "model"
    if not (model_dir / MANIFEST_FILE).is_file():
        say(f"simulating {plan.customers} customers over {plan.days} days")
        config = SimulationConfig(
            n_customers=plan.customers,
            n_terminals=plan.terminals,
            n_days=plan.days,
            start=plan.start,
            seed=plan.seed,
        )
        run_simulation(config, workdir / "sim")
        ingest_sources([str(workdir / "sim")], lake, load_mapping("handbook"))
        say("training")
        train_model(
            lake,
            model_dir,
            train_start=plan.train_start,
            train_days=plan.train_days,
            delay_days=plan.delay_days,
        )
    transactions = parquet_glob(lake, TRANSACTIONS_DIR)
    total = duckdb.execute(f"SELECT count(*) FROM read_parquet('{transactions}')").fetchall()[0][0]
    rows = [
        (tx_id, ts.astimezone(UTC), customer, terminal, amount, x, y)
        for tx_id, ts, customer, terminal, amount, x, y in duckdb.execute(
            "SELECT transaction_id, ts, customer_id, terminal_id, amount, terminal_x, terminal_y"
            f" FROM read_parquet('{transactions}') WHERE ts >= ? AND ts < ?"
            " ORDER BY ts, transaction_id",
            [plan.replay_start, plan.end],
        ).fetchall()
    ]
    definition = feature_definition(plan.delay_days)
    first = build_feature_table(
        lake, definition, start=rows[0][1], end=rows[0][1] + timedelta(microseconds=1)
    )
    fixed = [None if math.isnan(v) else float(v) for v in first[list(definition.names)].iloc[0]]
    manifest = load_model_dir(model_dir).manifest
    return Prepared(
        model_dir=model_dir,
        rows=rows,
        fixed_row=fixed,
        summary={
            "customers": plan.customers,
            "terminals": plan.terminals,
            "days": plan.days,
            "transactions": total,
            "replayed_transactions": len(rows),
            "replay_from": plan.replay_start.isoformat(),
            "model_version": manifest.model_version,
            "model_average_precision": manifest.metrics.mean.get("average_precision"),
        },
    )


def transaction_bodies(rows: Sequence[Row]) -> Iterator[bytes]:
    """The rows as request bodies in time order, endlessly.

    Each further pass renames the transactions (the service would answer a repeated id
    from its idempotency cache) and moves them later by whole weeks, so time keeps going
    forward and weekdays and nights stay what they were.
    """
    span = rows[-1][1] - rows[0][1]
    shift = timedelta(weeks=span // timedelta(weeks=1) + 1)
    for n in itertools.count():
        suffix, offset = (f"-r{n}" if n else ""), shift * n
        for tx_id, ts, customer, terminal, amount, x, y in rows:
            yield orjson.dumps(
                {
                    "transaction_id": tx_id + suffix,
                    "timestamp": ts + offset,
                    "customer_id": customer,
                    "terminal_id": terminal,
                    "amount": amount,
                    "terminal_x": x,
                    "terminal_y": y,
                }
            )


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    """Return once GET /readyz answers 200; raise if the process dies or time runs out."""
    ends = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/readyz"
    while time.monotonic() < ends:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=1.0) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)  # polling a process we do not control; it has no event to wait on
    raise RuntimeError(f"{url} was not 200 within {timeout_s:.0f} s")


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used; None where /proc cannot say.

    The server's CPU per request is the measure that survives a shared machine: other
    people's work stretches latency but not the CPU our process spends.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # Fields after the command (which may hold spaces) start at ")"; utime, stime are 14, 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serving(
    argv: Sequence[str], env: Mapping[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends, then SIGTERM it (SIGKILL after 30 s)."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(port, process)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -signal.SIGTERM):
                say(f"server exited with {process.returncode}; its log: {log}")


@dataclass(frozen=True)
class Load:
    """How each rate is run."""

    duration_s: float
    warmup_s: float
    connections: int
    headers: dict[str, str]


def run_rates(
    name: str,
    server: tuple[int, int],
    bodies: Iterator[bytes],
    rates: Sequence[float],
    load: Load,
    connections: int | None = None,
) -> list[RunResult]:
    """One run per rate against the server ``(port, pid)``, one after the other.

    Each result carries the server process's CPU per 1000 requests (warm-up included).
    """
    port, pid = server
    results = []
    for rate in rates:
        say(f"{name}: {rate:g} rps for {load.duration_s:g} s")
        cpu_before = process_cpu_s(pid)
        result = run(
            run_load(
                "127.0.0.1",
                port,
                PATH,
                bodies,
                rate_rps=rate,
                duration_s=load.duration_s,
                headers=load.headers,
                connections=connections or load.connections,
                warmup_s=load.warmup_s,
                seed=int(rate),
            )
        )
        cpu_after = process_cpu_s(pid)
        requests = round(rate * load.duration_s) + round(rate * load.warmup_s)
        if cpu_before is not None and cpu_after is not None and requests:
            per_1000 = (cpu_after - cpu_before) / requests * 1000.0
            result = dataclasses.replace(result, server_cpu_s_per_1000=per_1000)
        say(
            f"{name}: {rate:g} rps: p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms,"
            f" errors {result.errors}, statuses {result.status_counts},"
            f" server CPU {result.server_cpu_s_per_1000 or math.nan:.3f} s per 1000"
        )
        results.append(result)
    return results


def service_env(key: str, tmp: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of one ``fraudops serve``: its API key, decision log and quiet logs."""
    return {
        **os.environ,
        "FRAUDOPS_API__KEY_HASHES": json.dumps([hashlib.sha256(key.encode()).hexdigest()]),
        "FRAUDOPS_DECISION_LOG__URL": f"sqlite:///{tmp / 'decisions.db'}",
        "FRAUDOPS_DECISION_LOG__SPILL_DIR": str(tmp / "spill"),
        "FRAUDOPS_OBSERVABILITY__LOG_LEVEL": "WARNING",
        **extra,
    }


def service_available(program: Path) -> str | None:
    """Why ``fraudops serve`` cannot be benchmarked here, or None if it can."""
    try:
        done = subprocess.run(
            [str(program), "serve", "--help"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{program} serve --help failed: {exc}"
    return None if done.returncode == 0 else f"{program} serve --help exited {done.returncode}"


def delete_keys(url: str, prefix: str) -> int:
    """Delete every Redis key under ``prefix``; how many there were."""
    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += int(client.delete(*batch))
                batch = []
        if batch:
            deleted += int(client.delete(*batch))
    finally:
        client.close()
    return deleted


def code_version() -> dict[str, Any]:
    """The commit being measured and whether the tree differs from it (None outside git).

    Taken as each server starts, since the tree may move during a ten-minute run.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=BENCH, capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "dirty": None if changes is None else bool(changes)}


def sustainable(results: Sequence[RunResult], p99_ms: float) -> float | None:
    """The highest rate answered with p99 ≤ ``p99_ms`` and no errors; None if none was."""
    good = [r.rate_rps for r in results if r.errors == 0 and r.p99_ms <= p99_ms]
    return max(good) if good else None


def ratios(service: Sequence[RunResult], bare: Sequence[RunResult]) -> dict[str, dict[str, float]]:
    """Service latency over the bare app's at the same rate, p50 and p99."""
    base = {r.rate_rps: r for r in bare}
    return {
        f"{r.rate_rps:g}": {
            "p50": r.p50_ms / base[r.rate_rps].p50_ms,
            "p99": r.p99_ms / base[r.rate_rps].p99_ms,
        }
        for r in service
        if r.rate_rps in base
    }


def at(results: Sequence[RunResult], rate: float) -> RunResult | None:
    """The result of ``rate`` among ``results``, if it was run."""
    return next((r for r in results if r.rate_rps == rate), None)


def targets(
    series: Mapping[str, list[RunResult]], overload: RunResult | None
) -> dict[str, bool | None]:
    """The issue's targets, each True, False, or None when not measured."""
    memory = at(series.get("memory", []), 500.0)
    redis_run = at(series.get("redis", []), 500.0)
    return {
        "memory_500rps_p99_le_10ms": None if memory is None else memory.p99_ms <= 10.0,
        "memory_500rps_zero_errors": None if memory is None else memory.errors == 0,
        "overload_no_5xx": None
        if overload is None
        else not any(k.startswith("5") for k in overload.status_counts),
        "overload_all_answered": None
        if overload is None
        else overload.completed == round(overload.rate_rps * overload.duration_s),
        "redis_500rps_p99_le_15ms": None if redis_run is None else redis_run.p99_ms <= 15.0,
    }


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every configuration in turn; the results as one dict."""
    began = time.perf_counter()
    code: dict[str, Any] = {}
    rates = [float(r) for r in args.rates.split(",")]
    prepared = prepare(workdir, DataPlan(customers=args.customers, days=args.days))
    key = secrets.token_urlsafe(24)
    load = Load(args.duration, args.warmup, args.connections, {"X-API-Key": key})
    series: dict[str, list[RunResult]] = {}
    overload: RunResult | None = None
    notes: list[str] = []
    sustainable_rps: float | None = None

    port = free_port()
    bare = [sys.executable, str(BENCH / "bare_app.py"), "--model-dir", str(prepared.model_dir)]
    bare += ["--port", str(port), "--features", json.dumps(prepared.fixed_row)]
    code["bare"] = code_version()
    with serving(bare, os.environ, port, workdir / "bare.log") as process:
        bodies = transaction_bodies(prepared.rows)
        series["bare"] = run_rates("bare", (port, process.pid), bodies, rates, load)

    program = Path(sys.executable).with_name("fraudops")
    missing = service_available(program)
    if missing is not None:
        notes.append(f"service not benchmarked: {missing}")
    else:
        port = free_port()
        serve = [str(program), "serve", "--model-dir", str(prepared.model_dir)]
        serve += ["--host", "127.0.0.1", "--port", str(port)]
        logs = Path(tempfile.mkdtemp(prefix="memory-", dir=workdir))
        env = service_env(key, logs, {"FRAUDOPS_STATE__BACKEND": "memory"})
        code["memory"] = code_version()
        with serving(serve, env, port, logs / "serve.log") as process:
            bodies = transaction_bodies(prepared.rows)
            series["memory"] = run_rates("memory", (port, process.pid), bodies, rates, load)
            sustainable_rps = sustainable(series["memory"], P99_TARGET_MS["memory"])
            base = min(rates) if sustainable_rps is None else sustainable_rps
            if sustainable_rps is None:
                notes.append(f"no rate met p99 ≤ 10 ms with no errors; overload from {base:g}")
            (overload,) = run_rates(
                "overload",
                (port, process.pid),
                bodies,
                [base * args.overload_factor],
                load,
                args.overload_connections,
            )

        if args.skip_redis:
            notes.append("redis skipped (--skip-redis)")
        else:
            prefix = f"fraudops-bench-{secrets.token_hex(6)}"
            port = free_port()
            serve[-1] = str(port)
            logs = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
            redis_env = {
                "FRAUDOPS_STATE__BACKEND": "redis",
                "FRAUDOPS_STATE__REDIS_URL": args.redis_url,
                "FRAUDOPS_STATE__KEY_PREFIX": prefix,
            }
            env = service_env(key, logs, redis_env)
            code["redis"] = code_version()
            try:
                with serving(serve, env, port, logs / "serve.log") as process:
                    bodies = transaction_bodies(prepared.rows)
                    series["redis"] = run_rates("redis", (port, process.pid), bodies, rates, load)
            finally:
                say(f"redis: deleted {delete_keys(args.redis_url, prefix)} keys under {prefix}")

    every = [r for runs in series.values() for r in runs] + ([overload] if overload else [])
    return {
        "bench": "service",
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rates_rps": rates,
            "arrivals": "poisson",
            "connections": args.connections,
            "overload_factor": args.overload_factor,
            "overload_connections": args.overload_connections,
            "cpus": os.cpu_count(),
        },
        "code": code,
        "dataset": prepared.summary,
        "runs": {
            **{name: [r.as_dict() for r in runs] for name, runs in series.items()},
            "overload": overload.as_dict() if overload else None,
        },
        "sustainable_rps": sustainable_rps,
        "ratios": {
            name: ratios(series[name], series["bare"])
            for name in ("memory", "redis")
            if name in series
        },
        "targets": targets(series, overload),
        "client_cpu_s_per_1000_median": statistics.median(r.client_cpu_s_per_1000 for r in every),
        "notes": notes,
        "seconds": time.perf_counter() - began,
    }


def main() -> None:
    """Parse the flags, run the benchmark, print (and optionally write) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per rate")
    parser.add_argument("--rates", default="200,500,1000", help="requests per second, commas")
    parser.add_argument("--overload-factor", type=float, default=3.0)
    admitted = ServiceSettings().max_in_flight
    parser.add_argument("--connections", type=int, default=2 * admitted)
    parser.add_argument("--overload-connections", type=int, default=4 * admitted)
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--customers", type=int, default=DataPlan.customers)
    parser.add_argument("--days", type=int, default=DataPlan.days)
    parser.add_argument("--out-json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: tmp)")
    report(bench, parser.parse_args(), "fraudops-bench-service-")


def report(
    bench: Callable[[argparse.Namespace, Path], dict[str, Any]],
    args: argparse.Namespace,
    prefix: str,
) -> None:
    """Run ``bench`` in ``args.workdir`` (else a temporary folder named from ``prefix``),
    print its JSON, and write it to ``args.out_json`` too when that is set."""
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = bench(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            results = bench(args, Path(tmp))
    text = json.dumps(results, indent=2)
    if args.out_json is not None:
        args.out_json.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
