"""The load generator: its percentiles, its arrival schedule, and what a run counts."""

from __future__ import annotations

import asyncio
import itertools
import math
import socket
import statistics
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import orjson
import pytest
import uvicorn

from bare_app import PATH, create_bare_app
from fraudops.errors import ModelError
from fraudops.features import feature_definition
from fraudops.learn.artifact import ManifestMetrics, new_manifest, save_model_dir
from loadgen import Arrivals, RunResult, arrival_offsets, percentile, run, run_load
from tests.unit.bench.fake_http import FakeServer, Reply, Script


def bodies() -> Iterator[bytes]:
    """Transaction bodies with fresh ids, as the service takes them."""
    for n in itertools.count():
        yield orjson.dumps(
            {
                "transaction_id": f"t{n}",
                "timestamp": "2018-05-20T10:00:00Z",
                "customer_id": "c1",
                "terminal_id": "m1",
                "amount": 12.5,
                "terminal_x": 1.0,
                "terminal_y": 2.0,
            }
        )


RATE = 40.0
DURATION = 0.5
REQUESTS = round(RATE * DURATION)
"""A short fake run: its request count is a multiple of the scripts' cycles of two and four."""


def against(
    script: Script,
    *,
    duration_s: float = DURATION,
    connections: int = 64,
    arrivals: Arrivals = "poisson",
    timeout_s: float = 5.0,
) -> RunResult:
    """One run at RATE against a fake server answering by ``script``, no warm-up."""

    async def go() -> RunResult:
        async with FakeServer(script).running() as server:
            return await run_load(
                "127.0.0.1",
                server.port,
                PATH,
                bodies(),
                rate_rps=RATE,
                duration_s=duration_s,
                headers={},
                connections=connections,
                warmup_s=0.0,
                arrivals=arrivals,
                timeout_s=timeout_s,
            )

    return run(go())


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
@pytest.mark.parametrize("q", [1.0, 50.0, 95.0, 99.0, 99.9, 100.0])
def test_percentile_is_the_nearest_rank(n: int, q: float) -> None:
    """The percentile is numpy's inverted-CDF one: an observed value, no interpolation."""
    values = sorted(np.random.default_rng(n).exponential(size=n).tolist())
    assert float(np.percentile(values, q, method="inverted_cdf")) == percentile(values, q)


def test_percentile_of_nothing_is_nan() -> None:
    """With no latencies there is no percentile, rather than a made-up zero."""
    assert math.isnan(percentile([], 99.0))


@pytest.mark.parametrize("q", [0.0, -1.0, 100.5])
def test_percentile_outside_0_100_is_refused(q: float) -> None:
    """A percentile outside (0, 100] is a mistake, not a clamp."""
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], q)


@pytest.mark.parametrize(("rate", "duration"), [(200.0, 3.0), (500.0, 1.0), (37.0, 2.5)])
def test_uniform_schedule_spaces_rate_times_duration_evenly(rate: float, duration: float) -> None:
    """Uniform arrivals are rate × duration requests, 1/rate apart, from 0."""
    offsets = arrival_offsets(rate, duration, arrivals="uniform")
    gaps = np.diff(offsets)
    assert (round(rate * duration), 0.0) == (len(offsets), offsets[0])
    np.testing.assert_allclose(gaps, 1.0 / rate)


@pytest.mark.parametrize(("rate", "duration"), [(1000.0, 10.0), (200.0, 60.0)])
def test_poisson_schedule_has_exactly_rate_times_duration_arrivals(
    rate: float, duration: float
) -> None:
    """Poisson arrivals: rate × duration intended times, ascending, inside the window."""
    offsets = arrival_offsets(rate, duration, arrivals="poisson", seed=3)
    assert (round(rate * duration), offsets) == (len(offsets), sorted(offsets))
    assert (True, True) == (0.0 <= offsets[0], offsets[-1] < duration)


def test_poisson_schedule_gaps_are_exponential() -> None:
    """Poisson gaps have mean 1/rate and a spread equal to their mean (CV ≈ 1)."""
    rate = 1000.0
    gaps = np.diff(arrival_offsets(rate, 20.0, seed=5))
    assert statistics.fmean(gaps) == pytest.approx(1.0 / rate, rel=0.02)
    assert statistics.stdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, abs=0.05)


def test_schedule_is_fixed_by_its_seed() -> None:
    """The same seed gives the same arrivals; another seed other ones."""
    first, again, other = (arrival_offsets(100.0, 1.0, seed=s) for s in (1, 1, 2))
    assert (first, False) == (again, first == other)


def test_every_request_is_counted_by_outcome() -> None:
    """2xx bodies are tallied by source, degraded and shed; a 503 is an error."""
    replies = [
        Reply(200, {"source": "model", "degraded": False, "degraded_reason": None}),
        Reply(200, {"source": "rules", "degraded": True, "degraded_reason": "model_error"}),
        Reply(200, {"source": "static", "degraded": True, "degraded_reason": "shed"}),
        Reply(503, {"title": "overloaded"}),
    ]
    result = against(lambda n: replies[n % 4], arrivals="uniform", connections=1)
    each = REQUESTS // len(replies)
    assert (
        {"model": each, "rules": each, "static": each},
        2 * each,
        each,
        {"200": 3 * each, "503": each},
        each,
        4 * each,
    ) == (
        result.sources,
        result.degraded,
        result.shed,
        result.status_counts,
        result.errors,
        result.completed,
    )


def test_rates_are_over_requests_and_over_answers() -> None:
    """Errors are a share of requests; degraded, fallback and shed a share of 2xx answers."""
    result = RunResult(
        rate_rps=10.0, duration_s=2.0, sent=20, completed=19, errors=4,
        status_counts={"200": 16, "503": 3, "timeout": 1},
        p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, max_ms=4.0, achieved_rps=9.5,
        sources={"model": 10, "rules": 4, "static": 2}, degraded=6, shed=2,
        send_lag_p50_ms=0.0, send_lag_p99_ms=0.1, client_cpu_s_per_1000=0.2,
    )  # fmt: skip
    rates = result.as_dict()
    assert (4 / 20, 6 / 16, (4 + 2) / 16, 2 / 16) == (
        rates["error_rate"],
        rates["degraded_rate"],
        rates["fallback_rate"],
        rates["shed_rate"],
    )


def test_nothing_measured_is_null_in_json() -> None:
    """A run with no answers reports None, not NaN (which JSON cannot carry)."""
    result = RunResult(
        rate_rps=10.0, duration_s=1.0, sent=0, completed=0, errors=10,
        status_counts={"unfinished": 10}, p50_ms=math.nan, p95_ms=math.nan, p99_ms=math.nan,
        max_ms=math.nan, achieved_rps=0.0, sources={}, degraded=0, shed=0,
        send_lag_p50_ms=math.nan, send_lag_p99_ms=math.nan, client_cpu_s_per_1000=0.1,
    )  # fmt: skip
    rates = result.as_dict()
    assert (None, None, None, 1.0) == (
        rates["p99_ms"],
        rates["shed_rate"],
        rates["send_lag_p99_ms"],
        rates["error_rate"],
    )


def test_latency_counts_from_the_intended_send_time() -> None:
    """Requests queued behind a stalled response carry the stall (no coordinated omission)."""
    stall = 0.3
    result = against(
        lambda n: Reply(200, {}, delay_s=stall if n == 0 else 0.0),
        arrivals="uniform",
        connections=1,
    )
    # Closed-loop timing from each request's own send would give ~1 ms here except for one.
    assert stall * 1000.0 / 2 <= result.p95_ms
    assert stall * 1000.0 / 2 <= result.send_lag_p99_ms


def test_dropped_connections_are_transport_errors_and_reopened() -> None:
    """A connection closed without an answer counts as a transport error; the next reopens."""
    result = against(lambda n: None if n % 2 else Reply(200, {}), arrivals="uniform", connections=1)
    half = REQUESTS // 2
    assert ({"200": half, "transport": half}, half) == (result.status_counts, result.errors)


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending() -> None:
    """After a keep-alive close the next request goes on a new connection, not lost."""
    result = against(lambda n: Reply(200, {}, close=True), arrivals="uniform", connections=1)
    assert ({"200": REQUESTS}, 0) == (result.status_counts, result.errors)


def test_unanswered_requests_time_out() -> None:
    """A server that never answers gives timeouts, not a hang."""
    result = against(
        lambda n: Reply(200, {}, delay_s=10.0), duration_s=0.2, connections=2, timeout_s=0.2
    )
    total = round(RATE * 0.2)
    assert (total, 0) == (result.errors, result.completed)
    assert {"timeout", "unfinished"} >= set(result.status_counts)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LightGBM model directory over the current feature definition."""
    definition = feature_definition(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, len(definition.names)))
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 0},
        lgb.Dataset(x, label=(x[:, 0] > 1.0).astype(float), feature_name=list(definition.names)),
        num_boost_round=10,
    )
    manifest = new_manifest(
        booster,
        feature_definition_hash=definition.definition_hash(),
        label_delay_days=7,
        train_start=date(2018, 5, 1),
        train_end=date(2018, 5, 7),
        metrics=ManifestMetrics(mean={}, std={}, folds=[]),
        hyperparameters={},
        created_at=datetime(2018, 5, 8, tzinfo=UTC),
    )
    path = tmp_path_factory.mktemp("bare") / "model"
    save_model_dir(path, booster, manifest)
    return path


def test_mini_run_against_the_bare_app_answers_every_request(model_dir: Path) -> None:
    """At 50 rps for 1 s the bare app answers every measured request with 200."""
    width = len(feature_definition(7).names)
    app = create_bare_app(model_dir, [0.5, None] * (width // 2) + [-1.0] * (width % 2))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, http="httptools", ws="none", lifespan="off", access_log=False, log_level="warning"
        )
    )

    async def go() -> RunResult:
        # The socket already listens, so connections wait in its backlog until uvicorn
        # accepts them: nothing to poll for.
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            return await run_load(
                "127.0.0.1",
                port,
                PATH,
                bodies(),
                rate_rps=50.0,
                duration_s=1.0,
                headers={},
                connections=4,
                warmup_s=0.2,
            )
        finally:
            server.should_exit = True
            await serving

    result = run(go())
    expected = round(50.0 * 1.0)
    assert (expected, expected, {"200": expected}, 0) == (
        result.sent,
        result.completed,
        result.status_counts,
        result.errors,
    )


def test_bare_app_refuses_a_row_of_the_wrong_length(model_dir: Path) -> None:
    """A fixed row that does not fit the model fails at creation, not on every request."""
    width = len(feature_definition(7).names)
    with pytest.raises(ModelError, match=f"expects {width} features"):
        create_bare_app(model_dir, [1.0] * (width - 1))


def test_connections_are_spread_evenly_over_several_servers() -> None:
    """Given several ports (replicas), each server gets its share of connections and load."""

    async def go() -> tuple[RunResult, list[int]]:
        async with (
            FakeServer(lambda n: Reply(200, {})).running() as first,
            FakeServer(lambda n: Reply(200, {})).running() as second,
        ):
            result = await run_load(
                "127.0.0.1",
                [first.port, second.port],
                PATH,
                bodies(),
                rate_rps=RATE,
                duration_s=DURATION,
                headers={},
                connections=8,
                warmup_s=0.0,
                arrivals="uniform",
            )
            return result, [first.received, second.received]

    result, received = run(go())
    assert ({"200": REQUESTS}, REQUESTS) == (result.status_counts, sum(received))
    assert min(received) >= REQUESTS // 4
