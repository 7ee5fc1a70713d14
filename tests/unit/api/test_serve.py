"""``fraudops serve`` as a real process: SIGTERM under load, a slow client, Prometheus."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

import httpx2
import orjson
import sqlalchemy as sa

from fraudops.types import Transaction
from tests.conftest import TrainedLake
from tests.unit.api.conftest import HEADERS, body_of
from tests.unit.api.server import running_server
from tests.unit.monitoring.prometheus_server import running_prometheus, values, wait_for_result


def _logged_ids(database: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        ids = set(connection.execute(sa.text("select transaction_id from decisions")).scalars())
    engine.dispose()
    return ids


def test_sigterm_under_load_finishes_in_flight_work_and_loses_nothing(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """Clients hammer the service; SIGTERM: no 5xx, exit 0, every answered decision logged."""
    answered: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    # Cycle through the transactions under fresh ids, so load lasts until the server stops.
    queue = (
        {**body_of(tx), "transaction_id": f"{tx.transaction_id}-{n}"}
        for n in itertools.count()
        for tx in transactions
    )

    def client() -> None:
        with httpx2.Client(base_url=server.url, headers=HEADERS, timeout=5.0) as http:
            while True:
                with lock:
                    body = next(queue)
                try:
                    response = http.post("/v1/transactions", json=body)
                except httpx2.TransportError:
                    return  # the server stopped taking connections: not accepted, not lost
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        answered.append(body["transaction_id"])

    with running_server(
        tmp_path, trained_lake.model_dir, FRAUDOPS_OBSERVABILITY__LOG_LEVEL="INFO"
    ) as server:
        workers = [threading.Thread(target=client) for _ in range(6)]
        for worker in workers:
            worker.start()
        time.sleep(1.5)
        exit_code = server.terminate()
        for worker in workers:
            worker.join(10)
    # uvicorn re-raises the signal once its graceful shutdown is done, as a process should.
    assert exit_code in {0, -15}
    lines = [orjson.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
    decided = {
        line["transaction_id"]: line
        for line in lines
        if line["event"] in {"decision", "decision_degraded"}
    }
    assert "service_stopped" in {line["event"] for line in lines}
    # Every decision is a JSON log line carrying its transaction and trace ids.
    assert set(answered) <= set(decided)
    assert all(len(line["trace_id"]) == 32 for line in decided.values())
    assert answered, "no request was answered before SIGTERM"
    assert {200} == set(statuses)
    assert set(answered) <= _logged_ids(server.database)


def test_a_slow_client_does_not_hold_up_others(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """A client that sends half a body and stalls: others are answered quickly meanwhile."""
    with running_server(tmp_path, trained_lake.model_dir) as server:
        body = orjson.dumps(body_of(transactions[0]))
        head = (
            "POST /v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-API-Key: {HEADERS['X-API-Key']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(head + body[: len(body) // 2])
        timings = []
        with httpx2.Client(base_url=server.url, headers=HEADERS, timeout=5.0) as http:
            for tx in transactions[1:21]:
                started = time.perf_counter()
                response = http.post("/v1/transactions", json=body_of(tx))
                timings.append(time.perf_counter() - started)
                assert 200 == response.status_code
        slow.sendall(body[len(body) // 2 :])
        reply = slow.recv(65536).decode()
        slow.close()
        server.terminate()
    assert reply.startswith("HTTP/1.1 200")
    assert sorted(timings)[len(timings) // 2] < 0.1


def test_prometheus_scrapes_the_service_under_traffic(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """A real Prometheus scrapes the running service and reads its decision count back."""
    with running_server(tmp_path, trained_lake.model_dir) as server:
        with running_prometheus(tmp_path, [f"127.0.0.1:{server.port}"]) as prometheus:
            with httpx2.Client(base_url=server.url, headers=HEADERS, timeout=5.0) as http:
                for tx in transactions[:100]:
                    assert 200 == http.post("/v1/transactions", json=body_of(tx)).status_code
            result = wait_for_result(
                prometheus,
                "sum(fraudops_decisions_total)",
                lambda r: bool(r) and values(r)[0] >= 100,
            )
            latency = wait_for_result(
                prometheus, 'fraudops_decision_latency_seconds_bucket{le="0.01"}'
            )
        server.terminate()
    assert 100.0 == values(result)[0]
    assert values(latency)[0] > 0
