"""The FeatureState contract, run against every implementation; then what Redis adds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fraudops.errors import StoreError
from fraudops.features import DEFAULT_FEATURES, OnlineFeatures, lake_events
from fraudops.features.redis_state import (
    EXPIRE_BATCH,
    MAX_DEFERRED,
    MIN_REF_TTL_MS,
    RedisFeatureState,
)
from fraudops.features.replay import event_order
from fraudops.features.state import (
    CardState,
    FeatureState,
    InMemoryFeatureState,
    StateWrite,
    TerminalState,
    TxRef,
)
from fraudops.types import Label, Transaction
from tests.redis_server import private_redis
from tests.services import REDIS_URL, require_port

from .conftest import HOUR, LakeFactory, LakeSpec

# Generous: these tests check behaviour, and a shared CI machine can stall for a while.
_TIMEOUT_S = 2.0


def _shared_redis_store(prefix: str | None = None) -> RedisFeatureState:
    """A store on the shared test Redis under ``prefix`` (a fresh one by default)."""
    url = urlsplit(REDIS_URL)
    require_port("Redis", url.hostname or "127.0.0.1", url.port or 6379)
    prefix = prefix or f"fraudops-test-{uuid.uuid4().hex}"
    return RedisFeatureState.from_url(REDIS_URL, prefix=prefix, timeout_s=_TIMEOUT_S)


def _delete_keys(store: RedisFeatureState) -> None:
    keys = list(store.client.scan_iter(match=f"{store.prefix}:*"))
    if keys:
        store.client.delete(*keys)


@pytest.fixture
def redis_store() -> Iterator[RedisFeatureState]:
    """A Redis store under a fresh prefix on the shared Redis; its keys are deleted after."""
    store = _shared_redis_store()
    try:
        yield store
    finally:
        _delete_keys(store)
        store.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> FeatureState:
    """A fresh, empty store of each implementation."""
    if request.param == "memory":
        return InMemoryFeatureState()
    redis_store: RedisFeatureState = request.getfixturevalue("redis_store")
    return redis_store


def test_unknown_entities_have_no_state(store: FeatureState) -> None:
    """A card, terminal or transaction never written reads as None."""
    assert store.get_card("c") is None
    assert store.get_terminal("m") is None
    assert store.get_tx_ref("t") is None


def test_written_records_read_back_equal(store: FeatureState) -> None:
    """What is put is what is got."""
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m1", 1.0, 2.0)
    card.insert(1, 20, "t2", 0.1, "m2", float("nan"), float("nan"))
    card.evict(0)
    card.fraud_known_at, card.fraud_transaction_id = 15, "t1"
    terminal = TerminalState()
    terminal.insert(0, 10, "t1")
    terminal.label_known_at[0], terminal.is_fraud[0] = 15, True
    store.put_card("c", card)
    store.put_terminal("m", terminal)
    store.put_tx_ref("t1", TxRef("m", 10, "c"), expires_at=100)
    expected_ref = TxRef("m", 10, "c")
    assert card == store.get_card("c")
    assert terminal == store.get_terminal("m")
    assert expected_ref == store.get_tx_ref("t1")


def test_a_card_past_its_window_keeps_the_newest_expired_time(store: FeatureState) -> None:
    """An emptied card still says when its last transaction was."""
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m1", 1.0, 2.0)
    card.evict(1)
    store.put_card("c", card)
    expected = CardState(last_expired_ts=10)
    assert expected == store.get_card("c")


def test_references_expire_by_event_time(store: FeatureState) -> None:
    """A reference is gone once a newer one is written past its expiry."""
    store.put_tx_ref("old", TxRef("m", 10), expires_at=100)
    store.put_tx_ref("kept", TxRef("m", 90), expires_at=180)
    store.put_tx_ref("new", TxRef("m", 100), expires_at=190)
    assert store.get_tx_ref("old") is None
    expected = TxRef("m", 90)
    assert expected == store.get_tx_ref("kept")


def test_rewriting_a_reference_extends_it(store: FeatureState) -> None:
    """The latest write of a reference decides when it expires."""
    store.put_tx_ref("t", TxRef("m", 10), expires_at=100)
    store.put_tx_ref("t", TxRef("m", 10), expires_at=300)
    store.put_tx_ref("other", TxRef("m", 150), expires_at=400)
    expected = TxRef("m", 10)
    assert expected == store.get_tx_ref("t")


# What Redis adds: its key layout, wall-clock safety net, failures and shared state.


def test_records_sit_under_the_documented_keys(redis_store: RedisFeatureState) -> None:
    """Cards, terminals and references have one key each, plus one expiry index."""
    redis_store.put_card("c1", CardState())
    redis_store.put_terminal("m1", TerminalState())
    redis_store.put_tx_ref("t1", TxRef("m1", 0), expires_at=HOUR)
    prefix = redis_store.prefix
    expected = {
        f"{prefix}:card:c1",
        f"{prefix}:terminal:m1",
        f"{prefix}:txref:t1",
        f"{prefix}:txref-expiry",
    }
    assert expected == {key.decode() for key in redis_store.client.scan_iter(f"{prefix}:*")}


def test_a_reference_stored_before_references_named_the_card_still_reads(
    redis_store: RedisFeatureState,
) -> None:
    """``[terminal, ts]`` (an older release's layout) reads as a reference with no card."""
    redis_store.client.set(f"{redis_store.prefix}:txref:t1", b'["m1",10]')
    expected = TxRef("m1", 10, "")
    assert expected == redis_store.get_tx_ref("t1")


def test_cards_and_terminals_never_expire_by_wall_clock(redis_store: RedisFeatureState) -> None:
    """Records have no TTL: the engine trims their windows, Redis does not evict them."""
    redis_store.put_card("c1", CardState())
    redis_store.put_terminal("m1", TerminalState())
    no_ttl = -1
    assert no_ttl == redis_store.client.pttl(f"{redis_store.prefix}:card:c1")
    assert no_ttl == redis_store.client.pttl(f"{redis_store.prefix}:terminal:m1")


@pytest.mark.parametrize(
    ("lifetime_us", "expected_ttl_ms"),
    [(37 * 24 * HOUR, 37 * 24 * 3_600_000), (90, MIN_REF_TTL_MS)],
    ids=["event-time-lifetime", "minimum"],
)
def test_a_reference_key_has_a_wall_clock_ttl_as_a_safety_net(
    redis_store: RedisFeatureState, lifetime_us: int, expected_ttl_ms: int
) -> None:
    """A reference's key lives its event-time lifetime in wall time, or the minimum."""
    redis_store.put_tx_ref("t1", TxRef("m1", 10), expires_at=10 + lifetime_us)
    ttl_ms = redis_store.client.pttl(f"{redis_store.prefix}:txref:t1")
    # The TTL runs down while the test reads it back, by at most the test's timeout.
    assert expected_ttl_ms - _TIMEOUT_S * 1_000 <= ttl_ms <= expected_ttl_ms


def test_expired_references_leave_the_expiry_index(redis_store: RedisFeatureState) -> None:
    """The index holds exactly the references not yet expired, scored by their expiry."""
    redis_store.put_tx_ref("old", TxRef("m", 10), expires_at=100)
    redis_store.put_tx_ref("kept", TxRef("m", 90), expires_at=180)
    redis_store.put_tx_ref("new", TxRef("m", 100), expires_at=190)
    index = redis_store.client.zrange(f"{redis_store.prefix}:txref-expiry", 0, -1, withscores=True)
    expected = [(b"kept", 180.0), (b"new", 190.0)]
    assert expected == index


def test_one_write_expires_at_most_one_batch(redis_store: RedisFeatureState) -> None:
    """A backlog of expired references larger than a batch drains over the next writes."""
    backlog = EXPIRE_BATCH + 5
    for i in range(backlog):
        redis_store.put_tx_ref(f"t{i:05d}", TxRef("m", i), expires_at=backlog)
    index = f"{redis_store.prefix}:txref-expiry"
    redis_store.put_tx_ref("first", TxRef("m", backlog), expires_at=2 * backlog)
    expected_left = backlog - EXPIRE_BATCH + 1
    assert expected_left == redis_store.client.zcard(index)
    redis_store.put_tx_ref("second", TxRef("m", backlog), expires_at=2 * backlog)
    expected = [b"first", b"second"]
    assert expected == redis_store.client.zrange(index, 0, -1)
    assert redis_store.get_tx_ref(f"t{backlog - 1:05d}") is None


def test_from_url_fails_fast_without_retrying() -> None:
    """The client's timeouts are the given one, and it never retries by itself."""
    store = RedisFeatureState.from_url(REDIS_URL, timeout_s=0.02)
    try:
        kwargs = store.client.get_connection_kwargs()
        retry = store.client.get_retry()
        assert retry is not None
        expected = (0.02, 0.02, 0, 0)
        actual = (
            kwargs["socket_timeout"],
            kwargs["socket_connect_timeout"],
            kwargs["health_check_interval"],
            retry.get_retries(),
        )
        assert expected == actual
    finally:
        store.close()


_CARD = CardState()
_TERMINAL = TerminalState()
OPERATIONS: dict[str, Callable[[RedisFeatureState], object]] = {
    "get_card": lambda store: store.get_card("c1"),
    "put_card": lambda store: store.put_card("c1", _CARD),
    "get_terminal": lambda store: store.get_terminal("m1"),
    "put_terminal": lambda store: store.put_terminal("m1", _TERMINAL),
    "get_tx_ref": lambda store: store.get_tx_ref("t1"),
    "put_tx_ref": lambda store: store.put_tx_ref("t1", TxRef("m1", 0), expires_at=HOUR),
    "get_pair": lambda store: store.get_pair("c1", "m1"),
    "get_event": lambda store: store.get_event("c1", "m1", "t1"),
    "put_event": lambda store: store.put_event(
        StateWrite("c1", _CARD, "m1", _TERMINAL, "t1", TxRef("m1", 0), HOUR)
    ),
    "PING": RedisFeatureState.ping,
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_on_a_stopped_redis_raises_store_error(operation: str) -> None:
    """Refused connections surface as StoreError naming the operation, caused by Redis's error."""
    with private_redis() as server:
        store = RedisFeatureState.from_url(server.url, timeout_s=_TIMEOUT_S)
        store.put_card("c1", _CARD)
        server.stop()
        with pytest.raises(StoreError, match=operation) as raised:
            OPERATIONS[operation](store)
        store.close()
    assert isinstance(raised.value.__cause__, RedisError)


def test_a_hung_redis_times_out_as_store_error() -> None:
    """A Redis that accepts but never answers fails the call at the timeout, then recovers."""
    timeout_s = 0.05
    with private_redis() as server:
        store = RedisFeatureState.from_url(server.url, timeout_s=timeout_s)
        store.put_card("c1", _CARD)
        server.pause()
        started = time.monotonic()
        with pytest.raises(StoreError, match="get_card") as raised:
            store.get_card("c1")
        waited = time.monotonic() - started
        server.resume()
        # Generous against a stalled machine; a retrying client would wait ×4 plus backoff.
        assert waited < 20 * timeout_s
        assert isinstance(raised.value.__cause__, RedisTimeoutError)
        expected = CardState()
        assert expected == store.get_card("c1")
        store.close()


def test_the_store_recovers_when_redis_comes_back() -> None:
    """After a restart the same store works again, scripts reloaded; unpersisted state is gone."""
    with private_redis() as server:
        store = RedisFeatureState.from_url(server.url, timeout_s=_TIMEOUT_S)
        store.put_card("c1", _CARD)
        store.put_tx_ref("before", TxRef("m1", 0), expires_at=HOUR)
        server.stop()
        with pytest.raises(StoreError):
            store.ping()
        server.start()
        store.ping()
        store.put_tx_ref("after", TxRef("m1", 1), expires_at=HOUR)
        expected = TxRef("m1", 1)
        assert expected == store.get_tx_ref("after")
        assert store.get_card("c1") is None
        store.close()


def test_a_corrupt_record_raises_store_error(redis_store: RedisFeatureState) -> None:
    """A record that does not decode is a store failure, not a crash deep in the engine."""
    redis_store.client.set(f"{redis_store.prefix}:card:c1", b"{not json")
    with pytest.raises(StoreError, match="decoding a card"):
        redis_store.get_card("c1")


def _replay_features(
    events: list[Transaction | Label], engines: list[OnlineFeatures]
) -> tuple[list[str], np.ndarray]:
    """Events in production order, dealt round-robin over ``engines`` (replicas)."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    for i, event in enumerate(sorted(events, key=event_order)):
        engine = engines[i % len(engines)]
        if isinstance(event, Label):
            engine.observe_label(event)
        else:
            ids.append(event.transaction_id)
            rows.append(engine.compute_and_update(event))
    return ids, np.vstack(rows)


def test_replicas_over_redis_compute_what_one_engine_in_memory_does(
    make_lake: LakeFactory, redis_store: RedisFeatureState
) -> None:
    """Two engines sharing Redis, taking turns, give the in-memory engine's rows exactly."""
    lake = make_lake(LakeSpec(days=45, tx_per_day=25, cards=20, terminals=30, seed=5))
    events = list(lake_events(lake))
    in_memory = OnlineFeatures(DEFAULT_FEATURES, InMemoryFeatureState())
    second_client = _shared_redis_store(redis_store.prefix)
    replicas = [
        OnlineFeatures(DEFAULT_FEATURES, redis_store),
        OnlineFeatures(DEFAULT_FEATURES, second_client),
    ]
    try:
        expected_ids, expected = _replay_features(events, [in_memory])
        actual_ids, actual = _replay_features(events, replicas)
    finally:
        second_client.close()
    assert expected_ids == actual_ids
    assert np.array_equal(expected, actual, equal_nan=True)
    applied = sum(replica.labels_applied for replica in replicas)
    ignored = sum(replica.labels_ignored for replica in replicas)
    assert (in_memory.labels_applied, in_memory.labels_ignored) == (applied, ignored)
    # The stream must exercise labels: some transaction sees a fraud-labelled terminal.
    risk = DEFAULT_FEATURES.names.index("terminal_risk_30d")
    assert np.nanmax(expected[:, risk]) > 0


def test_a_pair_reads_what_single_writes_wrote(store: FeatureState) -> None:
    """get_pair gives the same records as get_card and get_terminal, None where unseen."""
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m1", 1.0, 2.0)
    store.put_card("c", card)
    expected = (card, None)
    assert expected == store.get_pair("c", "unseen")


def test_an_event_write_is_the_three_single_writes(store: FeatureState) -> None:
    """put_event stores the card, the terminal and the reference together."""
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m1", 1.0, 2.0)
    terminal = TerminalState()
    terminal.insert(0, 10, "t1")
    store.put_event(StateWrite("c", card, "m", terminal, "t1", TxRef("m", 10), 100))
    expected = (card, terminal, TxRef("m", 10))
    assert expected == (*store.get_pair("c", "m"), store.get_tx_ref("t1"))


def test_an_event_read_is_the_pair_and_the_ids_reference(store: FeatureState) -> None:
    """get_event gives get_pair's records and the id's reference: None for an id never
    written, the reference once its transaction was."""
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m1", 1.0, 2.0)
    terminal = TerminalState()
    terminal.insert(0, 10, "t1")
    before = store.get_event("c", "m", "t1")
    store.put_event(StateWrite("c", card, "m", terminal, "t1", TxRef("m", 10, "c"), 100))
    expected = [(None, None, None), (card, terminal, TxRef("m", 10, "c")), (card, None, None)]
    assert expected == [
        tuple(before),
        tuple(store.get_event("c", "m", "t1")),
        tuple(store.get_event("c", "unseen", "t2")),
    ]


def _event(card_id: str = "c", terminal_id: str = "m", transaction_id: str = "t1") -> StateWrite:
    """One transaction's write: a card and a terminal holding it, and its reference."""
    card = CardState()
    card.insert(0, 10, transaction_id, 5.0, terminal_id, 1.0, 2.0)
    terminal = TerminalState()
    terminal.insert(0, 10, transaction_id)
    return StateWrite(card_id, card, terminal_id, terminal, transaction_id, TxRef("m", 10), 100)


def _deferring(store: RedisFeatureState, delay_s: float) -> RedisFeatureState:
    """A second store on ``store``'s Redis and prefix whose writes wait up to ``delay_s``."""
    return RedisFeatureState(store.client, prefix=store.prefix, write_delay_s=delay_s)


def test_a_deferred_write_goes_with_the_next_read(redis_store: RedisFeatureState) -> None:
    """On an event loop, put_event waits for the next get_pair, which then reads it back."""
    store = _deferring(redis_store, delay_s=60.0)
    event = _event()

    async def write_then_read() -> tuple[int, object, object, int]:
        store.put_event(event)
        held, in_redis = store.deferred, redis_store.client.get(f"{store.prefix}:card:c")
        pair = store.get_pair("c", "m")
        return held, in_redis, pair, store.deferred

    expected = (1, None, (event.card, event.terminal), 0)
    assert expected == asyncio.run(write_then_read())


def test_a_deferred_write_without_a_read_is_written_by_the_timer(
    redis_store: RedisFeatureState,
) -> None:
    """No read within the delay: the write goes on its own."""
    store = _deferring(redis_store, delay_s=0.01)

    async def write_and_wait() -> int:
        store.put_event(_event())
        await asyncio.sleep(0.2)
        return store.deferred

    assert 0 == asyncio.run(write_and_wait())
    expected = (_event().card, _event().terminal, TxRef("m", 10))
    assert expected == (*redis_store.get_pair("c", "m"), redis_store.get_tx_ref("t1"))


def test_without_an_event_loop_writes_go_at_once(redis_store: RedisFeatureState) -> None:
    """No loop to flush later (a script, a thread): put_event writes through."""
    store = _deferring(redis_store, delay_s=60.0)
    store.put_event(_event())
    expected = (0, _event().card)
    assert expected == (store.deferred, redis_store.get_card("c"))


def test_every_other_operation_sees_the_deferred_writes(redis_store: RedisFeatureState) -> None:
    """Single reads and writes go after what is deferred, so they see it and keep its order."""
    store = _deferring(redis_store, delay_s=60.0)
    relabelled = _event().terminal
    relabelled.label_known_at[0], relabelled.is_fraud[0] = 20, True

    async def write_then_use() -> tuple[object, ...]:
        store.put_event(_event())
        ref = store.get_tx_ref("t1")
        store.put_event(_event())
        store.put_terminal("m", relabelled)
        return ref, store.get_terminal("m"), store.deferred

    expected = (TxRef("m", 10), relabelled, 0)
    assert expected == asyncio.run(write_then_use())


def test_close_writes_what_is_deferred(redis_store: RedisFeatureState) -> None:
    """Shutting down loses no deferred write."""
    store = RedisFeatureState.from_url(
        REDIS_URL, prefix=redis_store.prefix, timeout_s=_TIMEOUT_S, write_delay_s=60.0
    )

    async def write() -> None:
        store.put_event(_event())

    asyncio.run(write())
    store.close()
    assert _event().card == redis_store.get_card("c")


def test_deferred_writes_survive_an_outage_and_land_when_redis_returns() -> None:
    """A read during the outage fails and keeps the writes; the first read after lands them."""
    with private_redis() as server:
        store = RedisFeatureState.from_url(server.url, timeout_s=_TIMEOUT_S, write_delay_s=60.0)

        async def across_an_outage() -> tuple[int, object, int]:
            store.put_event(_event())
            server.stop()
            with pytest.raises(StoreError, match="get_pair"):
                store.get_pair("c", "m")
            held = store.deferred
            # The restarted Redis has lost the write script too: it is loaded again.
            server.start()
            return held, store.get_pair("c", "m"), store.deferred

        try:
            expected = (1, (_event().card, _event().terminal), 0)
            assert expected == asyncio.run(across_an_outage())
        finally:
            store.close()


def test_past_the_bound_deferred_writes_go_at_once(redis_store: RedisFeatureState) -> None:
    """No more than MAX_DEFERRED transactions' writes wait; the next one writes them all."""
    store = _deferring(redis_store, delay_s=60.0)

    async def write_many() -> int:
        for n in range(MAX_DEFERRED + 1):
            store.put_event(_event(card_id=f"c{n}", transaction_id=f"t{n}"))
        return store.deferred

    assert 0 == asyncio.run(write_many())
    assert _event(card_id="c0", transaction_id="t0").card == redis_store.get_card("c0")


# The async path: reads awaited on one pipelined connection, writes in order behind them.


def test_async_reads_carry_the_writes_deferred_before_them(redis_store: RedisFeatureState) -> None:
    """After a first fetch, every write (event or record) goes ahead of the next fetch."""
    store = _deferring(redis_store, delay_s=60.0)
    relabelled = _event().terminal
    relabelled.label_known_at[0], relabelled.is_fraud[0] = 20, True

    async def fetch_write_fetch() -> tuple[object, ...]:
        first = await store.fetch_pair("c", "m")
        store.put_event(_event())
        store.put_terminal("m", relabelled)
        held = store.deferred
        pair = await store.fetch_pair("c", "m")
        ref = await store.fetch_tx_ref("t1")
        store.close()
        return first, held, pair, ref, store.deferred

    expected = ((None, None), 2, (_event().card, relabelled), TxRef("m", 10), 0)
    assert expected == asyncio.run(fetch_write_fetch())


def test_async_writes_without_a_fetch_are_sent_by_the_timer(
    redis_store: RedisFeatureState,
) -> None:
    """On the async path the timer sends the writes on the pipe, without blocking the loop."""
    store = _deferring(redis_store, delay_s=0.01)

    async def write_and_wait() -> int:
        await store.fetch_pair("c", "m")
        store.put_event(_event())
        await asyncio.sleep(0.2)
        held = store.deferred
        store.close()
        return held

    assert 0 == asyncio.run(write_and_wait())
    expected = (_event().card, _event().terminal, TxRef("m", 10))
    assert expected == (*redis_store.get_pair("c", "m"), redis_store.get_tx_ref("t1"))


def test_concurrent_transactions_of_one_card_update_it_in_turn(
    redis_store: RedisFeatureState,
) -> None:
    """Thirty transactions of one card over two terminals, all in flight at once, get the
    features one engine in memory computes one after the other: none misses another."""
    start = datetime(2024, 3, 1, tzinfo=UTC)
    transactions = [
        Transaction(f"t{n}", start + timedelta(minutes=n), "c1", f"m{n % 2}", 10.0 + n)
        for n in range(30)
    ]
    in_memory = OnlineFeatures(DEFAULT_FEATURES, InMemoryFeatureState())
    expected = np.vstack([in_memory.serve(tx).values for tx in transactions])
    store = _deferring(redis_store, delay_s=0.005)
    engine = OnlineFeatures(DEFAULT_FEATURES, store)

    async def all_at_once() -> np.ndarray:
        served = await asyncio.gather(*(engine.serve_async(tx) for tx in transactions))
        store.close()
        return np.vstack([one.values for one in served])

    assert np.array_equal(expected, asyncio.run(all_at_once()), equal_nan=True)


def test_the_async_engine_over_redis_computes_what_the_engine_in_memory_does(
    make_lake: LakeFactory, redis_store: RedisFeatureState
) -> None:
    """Transactions and labels through serve_async and observe_label_async give the in-memory
    engine's rows and label counts exactly."""
    lake = make_lake(LakeSpec(days=45, tx_per_day=25, cards=20, terminals=30, seed=5))
    events = sorted(lake_events(lake), key=event_order)
    in_memory = OnlineFeatures(DEFAULT_FEATURES, InMemoryFeatureState())
    _, expected = _replay_features(events, [in_memory])
    store = _deferring(redis_store, delay_s=0.005)
    engine = OnlineFeatures(DEFAULT_FEATURES, store)

    async def replay() -> list[np.ndarray]:
        rows = []
        for event in events:
            if isinstance(event, Label):
                await engine.observe_label_async(event)
            else:
                rows.append((await engine.serve_async(event)).values)
        store.close()
        return rows

    actual = np.vstack(asyncio.run(replay()))
    assert np.array_equal(expected, actual, equal_nan=True)
    assert (in_memory.labels_applied, in_memory.labels_ignored) == (
        engine.labels_applied,
        engine.labels_ignored,
    )


def test_async_reads_fail_as_store_errors_and_keep_the_writes_through_an_outage() -> None:
    """A stopped Redis fails the fetch (StoreError naming it) and the writes wait; a hung one
    times out; once Redis is back the next fetch lands the writes and reads them."""
    timeout_s = 0.1
    with private_redis() as server:
        store = RedisFeatureState.from_url(server.url, timeout_s=timeout_s, write_delay_s=60.0)

        async def across_outages() -> tuple[BaseException | None, int, float, object]:
            await store.fetch_pair("c", "m")
            store.put_event(_event())
            server.stop()
            with pytest.raises(StoreError, match="get_pair") as refused:
                await store.fetch_pair("c", "m")
            held_while_down = store.deferred
            server.start()
            server.pause()
            started = time.monotonic()
            with pytest.raises(StoreError, match="get_pair"):
                await store.fetch_pair("c", "m")
            waited = time.monotonic() - started
            server.resume()
            pair = await store.fetch_pair("c", "m")
            store.close()
            return refused.value.__cause__, held_while_down, waited, pair

        cause, held, waited, pair = asyncio.run(across_outages())
    assert isinstance(cause, ConnectionError)
    assert 1 == held
    assert waited < 20 * timeout_s  # generous against a stalled machine
    assert (_event().card, _event().terminal) == pair


def test_an_attached_command_rides_with_the_next_fetch_and_gets_its_own_reply(
    redis_store: RedisFeatureState,
) -> None:
    """``attach`` adds a command to the next fetch's round trip: its reply goes to its own
    future, and a refused one fails only that future, not the fetch."""
    store = _deferring(redis_store, delay_s=60.0)
    key = f"{store.prefix}:decision:t1"

    async def go() -> tuple[list[Any], bool, BaseException | None]:
        claimed = store.attach(("SET", key, "?", "NX", "GET"))
        again = store.attach(("SET", key, "?", "NX", "GET"))
        refused = store.attach(("INCR", key))
        pending_before = claimed.done()
        await store.fetch_pair("c", "t")
        store.close()
        return [claimed.result(), again.result()], pending_before, refused.exception()

    replies, pending_before, refused = asyncio.run(go())
    assert [None, b"?"] == replies
    assert not pending_before
    assert isinstance(refused, StoreError)
