"""What a champion swap costs the decisions around it: latency with and without swaps; JSON.

One ``fraudops serve --model-alias champion`` follows a registry holding two models of the
same simulated bank (bench/service.py's data plan; the second trained a week earlier).
Each pair of runs sends the same open-loop load at ``--rate`` for ``--duration`` seconds:

- ``swapping``: the champion alias moves between the two models every ``--swap-every``
  seconds, so the service loads, warms and swaps a model in several times a run;
- ``steady``: the alias stays, while the same thread reads it at the same cadence (so both
  runs pay the bench's own registry calls).

The pairs alternate which run goes first, to spread the machine's drift over both. The
service polls the registry every ``--poll`` seconds. Reported per run: p50, p99 and max
latency, errors, degraded decisions and answers not from a champion (``sources``), and the
swaps the service made (``fraudops_model_swaps_total``); then the medians over pairs and
the swapping/steady p99 ratio. The machine is small, shared and noisy: read the ratio of a
pair, not a figure from another day. Progress goes to stderr, the JSON to stdout.

    .venv/bin/python bench/champion_swap.py [--rate 500] [--duration 30] [--pairs 3]
        [--swap-every 5] [--poll 1] [--workdir DIR] [--out-json PATH]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from fraudops.learn.artifact import MANIFEST_FILE
from fraudops.learn.jobs import train_model
from fraudops.learn.registry import MlflowRegistry, lineage_from_model_dir, open_registry
from loadgen import RunResult
from service import (
    DataPlan,
    Load,
    code_version,
    free_port,
    prepare,
    report,
    run_rates,
    say,
    service_env,
    serving,
    transaction_bodies,
)


def second_model(workdir: Path, plan: DataPlan) -> Path:
    """A model of the same lake trained a week earlier: another version to swap to."""
    model_dir = workdir / "model-earlier"
    if not (model_dir / MANIFEST_FILE).is_file():
        say("training the second model")
        train_model(
            workdir / "lake",
            model_dir,
            train_start=plan.train_start - timedelta(days=7),
            train_days=plan.train_days,
            delay_days=plan.delay_days,
        )
    return model_dir


def registry_of(root: Path, models: tuple[Path, Path]) -> MlflowRegistry:
    """A new registry at ``root`` holding ``models`` as versions 1 and 2; 1 is champion."""
    registry = open_registry(root)
    for model_dir in models:
        registry.register(model_dir, lineage=lineage_from_model_dir(model_dir, trained_by="bench"))
    registry.set_alias("champion", 1, actor="bench", reason="the bench starts on version 1")
    return registry


class AliasMover(threading.Thread):
    """Every ``every_s`` seconds, moves the champion alias to the other version (``move``)
    or only reads where it points (not ``move``), until stopped."""

    def __init__(self, registry: MlflowRegistry, every_s: float, *, move: bool) -> None:
        super().__init__(daemon=True)
        self.registry, self.every_s, self.move = registry, every_s, move
        self.moves = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            current = self.registry.get("champion").version
            if self.move:
                target = 2 if current == 1 else 1
                self.registry.set_alias("champion", target, actor="bench", reason="swap bench")
                self.moves += 1


def swaps_made(port: int) -> dict[str, float]:
    """The service's fraudops_model_swaps_total by outcome."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5.0) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("fraudops_model_swaps_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            found[outcome] = found.get(outcome, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def measured(result: RunResult, swaps: dict[str, float], moves: int) -> dict[str, Any]:
    """One run's figures."""
    return {
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "max_ms": result.max_ms,
        "sent": result.sent,
        "errors": result.errors,
        "degraded": result.degraded,
        "sources": result.sources,
        "alias_moves": moves,
        "swaps": swaps,
    }


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Prepare the two models and the registry, then run the pairs."""
    began = time.perf_counter()
    plan = DataPlan()
    prepared = prepare(workdir, plan)
    models = (prepared.model_dir, second_model(workdir, plan))
    registry_root = workdir / f"registry-{secrets.token_hex(4)}"
    registry = registry_of(registry_root, models)
    key = secrets.token_urlsafe(24)
    load = Load(args.duration, args.warmup, args.connections, {"X-API-Key": key})
    port = free_port()
    program = Path(sys.executable).with_name("fraudops")
    serve = [str(program), "serve", "--model-alias", "champion", "--registry", str(registry_root)]
    serve += ["--host", "127.0.0.1", "--port", str(port)]
    logs = Path(tempfile.mkdtemp(prefix="swap-", dir=workdir))
    env = service_env(
        key,
        logs,
        {"FRAUDOPS_SERVICE__ALIAS_POLL_S": str(args.poll), "FRAUDOPS_DATA_DIR": str(logs)},
    )
    runs: dict[str, list[dict[str, Any]]] = {"steady": [], "swapping": []}
    with serving(serve, env, port, logs / "serve.log") as process:
        bodies = transaction_bodies(prepared.rows)
        for pair in range(args.pairs):
            order = ("steady", "swapping") if pair % 2 == 0 else ("swapping", "steady")
            for name in order:
                before = swaps_made(port)
                mover = AliasMover(registry, args.swap_every, move=name == "swapping")
                mover.start()
                (result,) = run_rates(
                    f"{name} {pair + 1}", (port, process.pid), bodies, [args.rate], load
                )
                mover.stopped.set()
                mover.join()
                time.sleep(args.poll + 1.0)  # the last move's swap lands before the count
                after = swaps_made(port)
                made = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
                runs[name].append(measured(result, made, mover.moves))
    registry.close()

    def median(name: str, field: str) -> float:
        return float(statistics.median(run[field] for run in runs[name]))

    return {
        "bench": "champion_swap",
        "settings": {
            "rate_rps": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "pairs": args.pairs,
            "swap_every_s": args.swap_every,
            "poll_s": args.poll,
            "connections": args.connections,
        },
        "code": code_version(),
        "dataset": prepared.summary,
        "runs": runs,
        "median": {
            name: {field: median(name, field) for field in ("p50_ms", "p99_ms", "max_ms")}
            for name in runs
        },
        "p99_ratio_swapping_to_steady": [
            swapping["p99_ms"] / steady["p99_ms"]
            for swapping, steady in zip(runs["swapping"], runs["steady"], strict=True)
        ],
        "seconds": time.perf_counter() - began,
    }


def main() -> None:
    """Parse the flags, run the benchmark, print (and optionally write) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per run")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--swap-every", type=float, default=5.0, help="seconds between moves")
    parser.add_argument("--poll", type=float, default=1.0, help="the service's alias poll (s)")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--out-json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: tmp)")
    report(bench, parser.parse_args(), "fraudops-bench-swap-")


if __name__ == "__main__":
    main()
