"""Two replicas sharing the online state in Redis: a transaction is decided once, by one.

Each replica is a whole service (its own event loop, Redis connection and decision log),
both on the shared test Redis under one fresh key prefix.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fraudops.api import Runtime
from fraudops.decide.service import PENDING_ELSEWHERE
from fraudops.settings import Settings, StateSettings
from fraudops.types import Transaction
from tests.conftest import TrainedLake
from tests.services import REDIS_URL, require_port
from tests.unit.api.conftest import HEADERS, body_of, running_service, service_settings
from tests.unit.api.server import running_server

Replica = tuple[TestClient, Runtime]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix on the shared test Redis; its keys are deleted after."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        require_port("Redis", "127.0.0.1", 6379)
    prefix = f"fraudops-test-{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _settings(tmp_path: Path, trained_lake: TrainedLake, prefix: str, name: str) -> Settings:
    # Generous limits: these tests check who decides, on a machine that may stall.
    settings = service_settings(
        tmp_path / name, trained_lake.model_dir, deadline_ms=2000.0, store_timeout_ms=1000.0
    )
    state = StateSettings(backend="redis", redis_url=REDIS_URL, key_prefix=prefix)
    return settings.model_copy(update={"state": state})


@pytest.fixture
def replicas(
    tmp_path: Path, trained_lake: TrainedLake, prefix: str
) -> Iterator[tuple[Replica, Replica]]:
    """Replicas ``a`` and ``b``, each with its own decision log."""
    with ExitStack() as stack:
        a, b = (
            stack.enter_context(running_service(_settings(tmp_path, trained_lake, prefix, name)))
            for name in ("a", "b")
        )
        yield a, b


def _post(replica: Replica, tx: Transaction) -> dict[str, Any]:
    client, _ = replica
    response = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS)
    assert 200 == response.status_code, response.text
    body: dict[str, Any] = response.json()
    return body


def _logged(tmp_path: Path, name: str) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / name / 'decisions.db'}")
    with engine.connect() as connection:
        ids = list(connection.execute(sa.text("select transaction_id from decisions")).scalars())
    engine.dispose()
    return ids


def _repeated(runtime: Runtime, answered_from: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "fraudops_repeated_transactions_total", {"answered_from": answered_from}
    )
    return value or 0.0


def test_a_retry_at_another_replica_gets_the_first_decision_and_counts_once(
    tmp_path: Path, trained_lake: TrainedLake, prefix: str, transactions: list[Transaction]
) -> None:
    """b answers a's transaction with a's decision, logs nothing, and the card holds it once;
    asked for it, b has it at once (a's log is not b's)."""
    txs = transactions[:5]
    with ExitStack() as stack:
        a = stack.enter_context(running_service(_settings(tmp_path, trained_lake, prefix, "a")))
        b = stack.enter_context(running_service(_settings(tmp_path, trained_lake, prefix, "b")))
        firsts = [_post(a, tx) for tx in txs]
        looked_up = b[0].get(f"/v1/decisions/{txs[-1].transaction_id}", headers=HEADERS)
        retries = [_post(b, tx) for tx in txs]
        card = b[1].state.get_card(txs[0].customer_id)
        repeated = _repeated(b[1], "replica")
    assert firsts == retries
    assert (200, firsts[-1]) == (looked_up.status_code, looked_up.json())
    assert card is not None
    assert 1 == card.transaction_ids.count(txs[0].transaction_id)
    assert len(txs) == repeated
    assert [] == _logged(tmp_path, "b")
    assert sorted(tx.transaction_id for tx in txs) == sorted(_logged(tmp_path, "a"))


def test_another_payment_under_an_id_another_replica_decided_is_refused(
    replicas: tuple[Replica, Replica], transactions: list[Transaction]
) -> None:
    """The content travels with the claim: b refuses a's id sent with another amount."""
    a, b = replicas
    tx = transactions[0]
    _post(a, tx)
    changed = body_of(tx) | {"amount": tx.amount + 1.0}
    refused = b[0].post("/v1/transactions", json=changed, headers=HEADERS)
    assert 409 == refused.status_code
    assert "another amount" in refused.json()["detail"]


def test_a_claim_taken_for_a_refused_payment_is_given_up(
    tmp_path: Path, trained_lake: TrainedLake, prefix: str, transactions: list[Transaction]
) -> None:
    """Once the decision's claim has lapsed, b refuses another payment under a's id from the
    state's reference, and drops the claim it took: the first payment's retry is not kept
    waiting, and is scored as it first was."""
    settings = []
    for name in ("a", "b"):
        one = _settings(tmp_path, trained_lake, prefix, name)
        service = one.service.model_copy(update={"replica_recent_s": 0.2})
        settings.append(one.model_copy(update={"service": service}))
    tx = transactions[0]
    changed = body_of(tx) | {"amount": tx.amount + 1.0}
    with ExitStack() as stack:
        a, b = (stack.enter_context(running_service(one)) for one in settings)
        first = _post(a, tx)
        time.sleep(0.4)  # the decision's claim lapses
        refused = b[0].post("/v1/transactions", json=changed, headers=HEADERS)
        time.sleep(0.2)  # the release rides with b's next round trip, or its write timer
        store = redis.Redis.from_url(REDIS_URL)
        claim = store.get(f"{prefix}:decision:{tx.transaction_id}")
        store.close()
        again = _post(b, tx)
    assert 409 == refused.status_code
    assert claim is None
    assert (first["action"], first["score"]) == (again["action"], again["score"])
    assert not again["degraded"]


def test_the_same_transaction_at_two_replicas_at_once_is_decided_once(
    tmp_path: Path, trained_lake: TrainedLake, prefix: str, transactions: list[Transaction]
) -> None:
    """Each transaction posted to both replicas at the same moment: one answer, one log row,
    one entry in the card's history."""
    txs = transactions[:40]
    answers: dict[str, list[dict[str, Any]]] = {tx.transaction_id: [] for tx in txs}
    with ExitStack() as stack:
        a = stack.enter_context(running_service(_settings(tmp_path, trained_lake, prefix, "a")))
        b = stack.enter_context(running_service(_settings(tmp_path, trained_lake, prefix, "b")))
        for tx in txs:
            start = threading.Barrier(2)

            def post(replica: Replica, tx: Transaction = tx, start: Any = start) -> None:
                start.wait()
                answers[tx.transaction_id].append(_post(replica, tx))

            threads = [threading.Thread(target=post, args=(r,)) for r in (a, b)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        cards = {tx.customer_id: a[1].state.get_card(tx.customer_id) for tx in txs}
        repeated = _repeated(a[1], "replica") + _repeated(b[1], "replica")
    assert all(2 == len(pair) and pair[0] == pair[1] for pair in answers.values())
    logged = _logged(tmp_path, "a") + _logged(tmp_path, "b")
    assert sorted(answers) == sorted(logged)
    for tx in txs:
        card = cards[tx.customer_id]
        assert card is not None
        assert 1 == card.transaction_ids.count(tx.transaction_id)
    assert len(txs) == repeated


def test_a_claim_whose_replica_died_blocks_retries_until_it_lapses(
    replicas: tuple[Replica, Replica], prefix: str, transactions: list[Transaction]
) -> None:
    """A claim left pending (its replica died deciding): retries get the static policy,
    flagged, and nothing is logged or remembered; once it lapses, the next retry decides."""
    (client, runtime), _ = replicas
    tx = transactions[0]
    store = redis.Redis.from_url(REDIS_URL)
    store.set(f"{prefix}:decision:{tx.transaction_id}", b"?", px=1500)
    store.close()
    started = time.monotonic()
    stand_in = _post((client, runtime), tx)
    waited_s = time.monotonic() - started
    time.sleep(1.6)
    decided = _post((client, runtime), tx)
    assert (True, PENDING_ELSEWHERE, "static") == (
        stand_in["degraded"],
        stand_in["degraded_reason"],
        stand_in["source"],
    )
    assert waited_s < 2.0 + 1.0  # the deadline (2 s here), plus the request's own overhead
    assert ("model", False) == (decided["source"], decided["degraded"])
    assert 1.0 == _repeated(runtime, "replica_pending")


def test_two_server_processes_decide_each_retried_transaction_once(
    tmp_path: Path, trained_lake: TrainedLake, prefix: str, transactions: list[Transaction]
) -> None:
    """Two ``fraudops serve`` processes on one Redis, each transaction sent to both at once:
    the same answer from both, and it is logged by exactly one."""
    txs = transactions[:30]
    env = {
        "FRAUDOPS_STATE__BACKEND": "redis",
        "FRAUDOPS_STATE__REDIS_URL": REDIS_URL,
        "FRAUDOPS_STATE__KEY_PREFIX": prefix,
        "FRAUDOPS_SERVICE__DEADLINE_MS": "2000",
        "FRAUDOPS_SERVICE__STORE_TIMEOUT_MS": "1000",
    }
    answers: dict[str, list[dict[str, Any]]] = {tx.transaction_id: [] for tx in txs}
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                running_server(_fresh(tmp_path / n), trained_lake.model_dir, model_args=None, **env)
            )
            for n in ("a", "b")
        ]
        clients = [
            stack.enter_context(httpx2.Client(base_url=server.url, headers=HEADERS, timeout=10.0))
            for server in servers
        ]
        for tx in txs:
            start = threading.Barrier(2)

            def post(http: httpx2.Client, tx: Transaction = tx, start: Any = start) -> None:
                start.wait()
                response = http.post("/v1/transactions", json=body_of(tx))
                answers[tx.transaction_id].append(response.json())

            threads = [threading.Thread(target=post, args=(http,)) for http in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        for server in servers:
            server.terminate()
    assert all(2 == len(pair) and pair[0] == pair[1] for pair in answers.values())
    assert not any(pair[0]["degraded"] for pair in answers.values())
    logged = _logged(tmp_path, "a") + _logged(tmp_path, "b")
    assert sorted(answers) == sorted(logged)


def _fresh(directory: Path) -> Path:
    directory.mkdir()
    return directory
