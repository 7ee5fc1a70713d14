"""The decision store contract, over SQLite and a real PostgreSQL, and its outage behaviour."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import make_url

from fraudops.decide.log import SqlDecisionStore
from fraudops.errors import ConfigError, StoreError
from fraudops.types import LabelSource
from tests.faults import TcpProxy
from tests.services import postgres_schema_url
from tests.unit.decide.test_log_record import SAMPLES, make_label, make_record


@pytest.fixture
def open_store(sql_url: str) -> Iterator[Callable[[], SqlDecisionStore]]:
    """Opens stores on ``sql_url``, closing each at the end of the test."""
    opened: list[SqlDecisionStore] = []

    def open_one() -> SqlDecisionStore:
        store = SqlDecisionStore(sql_url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], SqlDecisionStore]) -> SqlDecisionStore:
    """An open store on an empty database."""
    return open_store()


def test_write_then_get_gives_back_the_same_records(store: SqlDecisionStore) -> None:
    """Every field of a record comes back exactly, missing features and trace included."""
    store.write(SAMPLES)
    assert SAMPLES == [store.get(record.transaction_id) for record in SAMPLES]


def test_get_of_an_unknown_transaction_is_none(store: SqlDecisionStore) -> None:
    """A transaction never decided has no record."""
    store.write(SAMPLES[:1])
    assert store.get("never-seen") is None


def test_count_is_the_number_of_records(store: SqlDecisionStore) -> None:
    """count() is how many distinct decisions are stored."""
    records = [make_record(number) for number in range(25)]
    store.write(records)
    assert len(records) == store.count()


def test_rewriting_a_transaction_keeps_the_first_record(store: SqlDecisionStore) -> None:
    """A re-write of a stored transaction id is ignored: the first record wins."""
    first = make_record(1)
    store.write([first])
    store.write([replace(first, decision=replace(first.decision, score=0.999))])
    assert first == store.get(first.transaction_id)
    assert 1 == store.count()


def test_a_repeated_id_within_one_batch_keeps_the_first(store: SqlDecisionStore) -> None:
    """Inside one batch too, the first record of a transaction id wins and the batch lands."""
    first, other = make_record(1), make_record(2)
    again = replace(first, trace_id="another-trace")
    store.write([first, other, again])
    assert first == store.get(first.transaction_id)
    assert 2 == store.count()


def test_labels_are_stored_once_per_source_and_time(store: SqlDecisionStore) -> None:
    """A label is kept once per (transaction, source, known_at); re-writes are ignored."""
    chargeback = make_label(1, LabelSource.CHARGEBACK)
    verdict = make_label(1, LabelSource.ANALYST)
    store.write([], [chargeback, chargeback])
    store.write([make_record(1)], [chargeback, verdict])
    assert (chargeback, verdict) == store.labels(chargeback.transaction_id)
    assert () == store.labels("never-seen")


def test_records_outlive_the_store_object(open_store: Callable[[], SqlDecisionStore]) -> None:
    """Written records are durable: a store opened afresh on the same database reads them."""
    first = open_store()
    first.write(SAMPLES, [make_label(1)])
    first.close()
    second = open_store()
    assert SAMPLES == [second.get(record.transaction_id) for record in SAMPLES]
    assert (make_label(1),) == second.labels(make_label(1).transaction_id)


def test_an_empty_write_is_a_no_op(store: SqlDecisionStore) -> None:
    """Writing nothing succeeds and stores nothing."""
    store.write([], [])
    assert 0 == store.count()


def test_ping_answers_when_the_database_is_up(store: SqlDecisionStore) -> None:
    """ping() returns quietly while the database answers."""
    store.ping()


def test_sqlite_creates_its_folder_and_runs_in_wal_mode(tmp_path: Path) -> None:
    """The database file's folder is created, and the journal is a write-ahead log."""
    path = tmp_path / "a" / "b" / "decisions.db"
    store = SqlDecisionStore(f"sqlite:///{path}")
    store.write(SAMPLES[:1])
    store.close()
    with sqlite3.connect(path) as connection:
        assert ("wal",) == connection.execute("PRAGMA journal_mode").fetchone()


def test_an_in_memory_sqlite_store_is_shared_across_threads() -> None:
    """``sqlite://`` keeps one database for the whole store, not one per pooled connection."""
    store = SqlDecisionStore("sqlite://")
    writer = threading.Thread(target=store.write, args=(SAMPLES,))
    writer.start()
    writer.join()
    assert SAMPLES[0] == store.get(SAMPLES[0].transaction_id)
    store.close()


def test_an_unsupported_database_is_a_config_error() -> None:
    """Only SQLite and PostgreSQL are supported; any other URL fails at construction."""
    with pytest.raises(ConfigError, match="not supported"):
        SqlDecisionStore("mysql://user@localhost/decisions")


def test_a_malformed_url_is_a_store_error() -> None:
    """A URL SQLAlchemy cannot parse is reported as a StoreError."""
    with pytest.raises(StoreError, match="malformed"):
        SqlDecisionStore("not a url")


@pytest.fixture
def proxied_postgres() -> Iterator[tuple[TcpProxy, str]]:
    """A private PostgreSQL schema reached through a cuttable proxy, and its URL."""
    with postgres_schema_url() as url:
        target = make_url(url)
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            yield proxy, proxy.url_for(url)


def test_every_call_is_a_store_error_while_postgres_is_unreachable(
    proxied_postgres: tuple[TcpProxy, str],
) -> None:
    """With the database cut off, write, get, count, labels and ping raise StoreError."""
    proxy, url = proxied_postgres
    store = SqlDecisionStore(url)
    store.write(SAMPLES[:1])
    proxy.cut()
    calls: list[Callable[[], object]] = [
        lambda: store.write(SAMPLES[1:2]),
        lambda: store.get(SAMPLES[0].transaction_id),
        store.count,
        lambda: store.labels(SAMPLES[0].transaction_id),
        store.ping,
    ]
    for call in calls:
        with pytest.raises(StoreError, match="decision log"):
            call()
    store.close()


def test_the_store_reconnects_when_postgres_returns(
    proxied_postgres: tuple[TcpProxy, str],
) -> None:
    """After an outage the pooled connections are replaced and writes go through again."""
    proxy, url = proxied_postgres
    store = SqlDecisionStore(url)
    store.write(SAMPLES[:1])
    proxy.cut()
    with pytest.raises(StoreError):
        store.write(SAMPLES[1:2])
    proxy.restore()
    store.write(SAMPLES[1:2])
    assert SAMPLES[:2] == [store.get(record.transaction_id) for record in SAMPLES[:2]]
    assert 2 == store.count()
    store.close()


def test_a_store_built_during_an_outage_creates_its_tables_later(
    proxied_postgres: tuple[TcpProxy, str],
) -> None:
    """Building the store with the database down does not fail; the tables come with it."""
    proxy, url = proxied_postgres
    proxy.cut()
    store = SqlDecisionStore(url)
    with pytest.raises(StoreError):
        store.ping()
    proxy.restore()
    store.write(SAMPLES)
    assert len(SAMPLES) == store.count()
    store.close()
