"""Replicas of the decision service sharing one Redis: one process against two; prints JSON.

For each replica count in ``--replicas`` (default 1,2), starts that many ``fraudops serve``
processes with their feature state in Redis under one shared key prefix, each with its own
decision log, spreads the load generator's connections evenly over them (as a load balancer
would), and runs each rate of ``--rates`` (bench/loadgen.py: open loop, Poisson arrivals,
latency from the intended send time). A share of the requests (``--retry-share``) repeats a
transaction sent a few requests before, as a payment network's retry does; with two
replicas about half the retries reach the replica that did not decide the transaction.

After each configuration its servers are stopped (SIGTERM: every buffered decision is
written) and their decision logs read: every transaction sent must be logged exactly once
across the replicas (``logged_twice`` and ``not_logged`` are 0), whichever replica answered
its retries. Each replica's ``fraudops_repeated_transactions_total`` says what answered the
repeats (its own memory, or another replica's decision through Redis).

The data, model and bodies are bench/service.py's. The machine has 2 cores, shared by the
generator, Redis and the servers, so a second replica buys parallel parsing at the price of
contention: compare the configurations of the same run, medians over ``--rounds``.

    .venv/bin/python bench/replicas.py [--replicas 1,2] [--rates 500,1000,1500]
        [--duration 30] [--retry-share 0.05] [--rounds 1] [--workdir DIR] [--out-json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import secrets
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from loadgen import run, run_load
from service import (
    PATH,
    DataPlan,
    code_version,
    delete_keys,
    free_port,
    prepare,
    process_cpu_s,
    say,
    service_env,
    serving,
    transaction_bodies,
)

_ID = re.compile(rb'"transaction_id":"([^"]*)"')
_REPEATED = re.compile(r'^fraudops_repeated_transactions_total\{answered_from="(\w+)"\} (\S+)$')


class Sent:
    """The request bodies, with retries mixed in, and the transaction ids handed out."""

    def __init__(self, bodies: Iterator[bytes], retry_share: float, seed: int = 7) -> None:
        self._bodies = bodies
        self._retry_share = retry_share
        self._random = random.Random(seed)
        self._recent: deque[bytes] = deque(maxlen=8)
        self.ids: set[bytes] = set()
        self.retries = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._recent and self._random.random() < self._retry_share:
            self.retries += 1
            return self._random.choice(self._recent)
        body = next(self._bodies)
        match = _ID.search(body)
        assert match is not None
        self.ids.add(match.group(1))
        self._recent.append(body)
        return body


def repeated_by_source(port: int) -> dict[str, float]:
    """A replica's ``fraudops_repeated_transactions_total``, by what answered the repeats."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5.0) as response:
        text = response.read().decode()
    found = (_REPEATED.match(line) for line in text.splitlines())
    return {m.group(1): float(m.group(2)) for m in found if m is not None}


def logged_ids(database: Path) -> list[str]:
    """The transaction ids in one replica's decision log."""
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT transaction_id FROM decisions"))
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()


def configuration(
    args: argparse.Namespace, workdir: Path, model_dir: Path, rows: Any, replicas: int
) -> dict[str, Any]:
    """``replicas`` servers on one Redis prefix, every rate in turn; the results."""
    key = secrets.token_urlsafe(24)
    prefix = f"fraudops-bench-{secrets.token_hex(6)}"
    program = Path(sys.executable).with_name("fraudops")
    sent = Sent(transaction_bodies(rows), args.retry_share)
    ports = [free_port() for _ in range(replicas)]
    logs = [Path(tempfile.mkdtemp(prefix=f"replica{n}-", dir=workdir)) for n in range(replicas)]
    runs: list[dict[str, Any]] = []
    repeated: Counter[str] = Counter()
    try:
        with contextlib.ExitStack() as stack:
            pids = []
            for port, log in zip(ports, logs, strict=True):
                env = service_env(
                    key,
                    log,
                    {
                        "FRAUDOPS_STATE__BACKEND": "redis",
                        "FRAUDOPS_STATE__REDIS_URL": args.redis_url,
                        "FRAUDOPS_STATE__KEY_PREFIX": prefix,
                    },
                )
                argv = [str(program), "serve", "--model-dir", str(model_dir)]
                argv += ["--host", "127.0.0.1", "--port", str(port)]
                pids.append(stack.enter_context(serving(argv, env, port, log / "serve.log")).pid)
            for rate in (float(r) for r in args.rates.split(",")):
                say(f"{replicas} replica(s): {rate:g} rps for {args.duration:g} s")
                cpu_before = [process_cpu_s(pid) or 0.0 for pid in pids]
                result = run(
                    run_load(
                        "127.0.0.1",
                        ports,
                        PATH,
                        sent,
                        rate_rps=rate,
                        duration_s=args.duration,
                        headers={"X-API-Key": key},
                        connections=args.connections,
                        warmup_s=args.warmup,
                        seed=int(rate),
                    )
                )
                cpu = sum(process_cpu_s(pid) or 0.0 for pid in pids) - sum(cpu_before)
                requests = round(rate * (args.duration + args.warmup))
                row = result.as_dict() | {"server_cpu_s_per_1000": cpu / requests * 1000.0}
                say(
                    f"{replicas} replica(s): {rate:g} rps: p50 {result.p50_ms:.2f} ms, p99"
                    f" {result.p99_ms:.2f} ms, errors {result.errors}, degraded"
                    f" {result.degraded}, server CPU {row['server_cpu_s_per_1000']:.3f} s/1000"
                )
                runs.append(row)
            for port in ports:
                repeated.update(repeated_by_source(port))
    finally:
        say(f"redis: deleted {delete_keys(args.redis_url, prefix)} keys under {prefix}")
    counts = Counter(i for log in logs for i in logged_ids(log / "decisions.db"))
    sent_ids = {i.decode() for i in sent.ids}
    return {
        "replicas": replicas,
        "runs": runs,
        "transactions_sent": len(sent_ids),
        "retries_sent": sent.retries,
        "repeats_answered_from": dict(sorted(repeated.items())),
        "logged": sum(counts.values()),
        "logged_twice": sum(1 for n in counts.values() if n > 1),
        "not_logged": len(sent_ids - set(counts)),
    }


def main() -> None:
    """Parse the flags, run every configuration ``--rounds`` times, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2", help="replica counts, commas")
    parser.add_argument("--rates", default="500,1000,1500", help="requests per second, commas")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per rate")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--retry-share", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the configurations")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: tmp)")
    parser.add_argument("--out-json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        prepared = prepare(workdir, DataPlan())
        results = [
            configuration(args, workdir, prepared.model_dir, prepared.rows, int(n))
            for _ in range(args.rounds)
            for n in args.replicas.split(",")
        ]
    document = {
        "bench": "replicas",
        "settings": {
            key: value if not isinstance(value, Path) else str(value)
            for key, value in vars(args).items()
        },
        "code": code_version(),
        "dataset": prepared.summary,
        "configurations": results,
        "seconds": time.perf_counter() - began,
    }
    text = json.dumps(document, indent=2)
    if args.out_json is not None:
        args.out_json.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
