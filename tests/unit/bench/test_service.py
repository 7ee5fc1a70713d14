"""The service benchmark's pieces: replayed request bodies and the sustainable rate."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime, timedelta

import orjson

from loadgen import RunResult
from service import Row, process_cpu_s, ratios, sustainable, transaction_bodies

START = datetime(2018, 5, 8, 9, 30, tzinfo=UTC)
ROWS: list[Row] = [
    ("10", START, "1", "7", 12.5, 1.0, 2.0),
    ("11", START + timedelta(days=3, hours=2), "2", "8", 80.0, None, None),
    ("12", START + timedelta(days=9), "1", "9", 5.0, 3.5, 4.5),
]


def result(rate: float, p50_ms: float, p99_ms: float, errors: int = 0) -> RunResult:
    """A run at ``rate`` with these latencies and errors (other fields plausible)."""
    requests = round(rate * 60.0)
    return RunResult(
        rate_rps=rate, duration_s=60.0, sent=requests, completed=requests - errors,
        errors=errors, status_counts={"200": requests - errors}, p50_ms=p50_ms, p95_ms=p99_ms,
        p99_ms=p99_ms, max_ms=p99_ms, achieved_rps=rate, sources={}, degraded=0, shed=0,
        send_lag_p50_ms=0.0, send_lag_p99_ms=0.0, client_cpu_s_per_1000=0.2,
    )  # fmt: skip


def test_bodies_carry_the_service_fields_in_time_order() -> None:
    """The first pass is the rows themselves, as the JSON the service takes."""
    first = [orjson.loads(b) for b in itertools.islice(transaction_bodies(ROWS), len(ROWS))]
    expected = [
        {
            "transaction_id": tx_id,
            "timestamp": ts.isoformat(),
            "customer_id": customer,
            "terminal_id": terminal,
            "amount": amount,
            "terminal_x": x,
            "terminal_y": y,
        }
        for tx_id, ts, customer, terminal, amount, x, y in ROWS
    ]
    assert expected == first


def test_later_passes_rename_and_move_forward_by_whole_weeks() -> None:
    """Each further pass has fresh ids and later times on the same weekday and hour."""
    bodies = [orjson.loads(b) for b in itertools.islice(transaction_bodies(ROWS), 3 * len(ROWS))]
    ids = [b["transaction_id"] for b in bodies]
    times = [datetime.fromisoformat(b["timestamp"]) for b in bodies]
    shifts = {times[i + len(ROWS)] - times[i] for i in range(2 * len(ROWS))}
    (shift,) = shifts
    assert (len(ids), times, timedelta(0)) == (
        len(set(ids)),
        sorted(times),
        shift % timedelta(weeks=1),
    )
    assert ROWS[-1][1] - ROWS[0][1] < shift


def test_sustainable_rate_is_the_highest_within_target_without_errors() -> None:
    """Rates over the p99 target, or with any error, are not sustainable."""
    runs = [result(200, 2.0, 6.0), result(500, 3.0, 9.0), result(800, 3.0, 8.0, errors=1)]
    runs.append(result(1000, 5.0, 40.0))
    assert 500.0 == sustainable(runs, p99_ms=10.0)


def test_no_sustainable_rate_is_none() -> None:
    """When every rate misses the target there is no sustainable rate."""
    assert sustainable([result(200, 2.0, 60.0)], p99_ms=10.0) is None


def test_ratios_divide_by_the_bare_run_at_the_same_rate() -> None:
    """Ratios pair runs by rate and leave out rates the bare app did not run."""
    bare = [result(200, 2.0, 8.0), result(500, 1.5, 10.0)]
    service = [result(200, 5.0, 20.0), result(500, 3.0, 15.0), result(1000, 9.0, 90.0)]
    expected = {
        "200": {"p50": 5.0 / 2.0, "p99": 20.0 / 8.0},
        "500": {"p50": 3.0 / 1.5, "p99": 15.0 / 10.0},
    }
    assert expected == ratios(service, bare)


def test_process_cpu_counts_this_process_and_nothing_for_a_missing_one() -> None:
    """The CPU read from /proc grows with work done here; a pid that is gone reads None."""
    before = process_cpu_s(os.getpid())
    ends = time.process_time() + 0.05
    while time.process_time() < ends:
        pass
    after = process_cpu_s(os.getpid())
    assert before is not None
    assert after is not None
    assert after - before >= 0.03
    assert process_cpu_s(2**22 + 1) is None
