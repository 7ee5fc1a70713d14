"""The event-loop Redis store sees and writes exactly what the synchronous one does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fraudops.features.redis_async import AsyncRedisFeatureState
from fraudops.features.redis_state import RedisFeatureState
from fraudops.features.state import CardState, StateWrite, TerminalState, TxRef
from tests.redis_server import private_redis
from tests.services import REDIS_URL
from tests.unit.features.test_state import _delete_keys, _shared_redis_store


@pytest.fixture
def sync_store() -> Iterator[RedisFeatureState]:
    """A synchronous store under a fresh prefix; its keys are deleted after."""
    store = _shared_redis_store()
    try:
        yield store
    finally:
        _delete_keys(store)
        store.close()


def _records() -> tuple[CardState, TerminalState]:
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m", 1.0, 2.0)
    terminal = TerminalState()
    terminal.insert(0, 10, "t1")
    return card, terminal


def test_an_async_write_reads_back_in_both_stores(sync_store: RedisFeatureState) -> None:
    """put_event from the loop: the sync store reads the same card, terminal and reference."""
    card, terminal = _records()

    async def write_and_read() -> tuple[object, ...]:
        store = AsyncRedisFeatureState.from_url(REDIS_URL, prefix=sync_store.prefix, timeout_s=2)
        try:
            await store.put_event(StateWrite("c", card, "m", terminal, "t1", TxRef("m", 10), 99))
            pair = await store.get_pair("c", "m")
            target = await store.get_label_target("t1")
        finally:
            await store.close()
        return (*pair, *target)

    expected = (card, terminal, TxRef("m", 10), terminal)
    assert expected == asyncio.run(write_and_read())
    assert (card, terminal) == sync_store.get_pair("c", "m")


def test_unknown_ids_read_as_none(sync_store: RedisFeatureState) -> None:
    """Nothing written: no records and no label target."""

    async def read() -> tuple[object, ...]:
        store = AsyncRedisFeatureState.from_url(REDIS_URL, prefix=sync_store.prefix, timeout_s=2)
        try:
            return (*await store.get_pair("c", "m"), *await store.get_label_target("t"))
        finally:
            await store.close()

    assert (None, None, None, None) == asyncio.run(read())


def test_a_stopped_server_is_a_store_error() -> None:
    """Every call against a Redis that is down raises StoreError, not a Redis exception."""
    from fraudops.errors import StoreError

    with private_redis() as server:
        server.stop()

        async def call() -> None:
            store = AsyncRedisFeatureState.from_url(server.url, timeout_s=0.2)
            try:
                await store.get_pair("c", "m")
            finally:
                await store.close()

        with pytest.raises(StoreError, match="get_pair"):
            asyncio.run(call())
