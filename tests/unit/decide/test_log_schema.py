"""The decision log's schema: built by its migrations, adopted from older releases, shared.

Over SQLite and a real PostgreSQL. "Older releases" made the tables without migrations;
their shapes are those of revisions 0001 (before ``logged_at``) and 0003 (before the
terminal index), with no version table.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fraudops.decide import log_schema
from fraudops.decide.log import SqlDecisionStore
from fraudops.errors import StoreError
from fraudops.migrations import own_tables
from fraudops.review import _schema as review_schema
from fraudops.review.database import ReviewDatabase
from fraudops.review.decisions import SqlDecisionReader
from fraudops.sql import create_engine
from tests.services import postgres_schema_url
from tests.unit.decide.test_log_record import SAMPLES, make_record

HEAD = ScriptDirectory.from_config(log_schema.alembic_config()).get_current_head()


def revision_of(engine: sa.Engine) -> str | None:
    """The decision log's migration revision in ``engine``'s database (None: unversioned)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": log_schema.VERSION_TABLE}
        )
        return context.get_current_revision()


def differences(
    engine: sa.Engine,
    metadata: sa.MetaData = log_schema.metadata,
    version_table: str = log_schema.VERSION_TABLE,
) -> list[object]:
    """How the database's tables of ``metadata`` differ from the code's description."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": version_table, "include_name": own_tables(metadata)},
        )
        return list(compare_metadata(context, metadata))


def as_an_older_release_left_it(engine: sa.Engine, revision: str) -> None:
    """Take the database down to ``revision``'s tables and forget the migrations ran: what a
    release before the migrations left (it made its tables without a version table)."""
    with engine.begin() as connection:
        command.downgrade(log_schema.alembic_config(connection), revision)
        connection.execute(sa.text(f"DROP TABLE {log_schema.VERSION_TABLE}"))


def test_the_migrations_build_exactly_the_tables_the_code_describes(sql_url: str) -> None:
    """A new log's database is at the newest revision and matches the metadata exactly."""
    store = SqlDecisionStore(sql_url)
    engine = create_engine(sql_url, what="the test's decision log")
    try:
        store.write(SAMPLES)
        assert HEAD == revision_of(engine)
        assert [] == differences(engine)
    finally:
        engine.dispose()
        store.close()


def test_the_migrations_downgrade_to_nothing_and_back(sql_url: str) -> None:
    """Downgrading to base drops every table of the log; upgrading again rebuilds them."""
    SqlDecisionStore(sql_url).close()
    engine = create_engine(sql_url, what="the test's decision log")
    try:
        with engine.begin() as connection:
            command.downgrade(log_schema.alembic_config(connection), "base")
        assert {log_schema.VERSION_TABLE} == set(sa.inspect(engine).get_table_names())
        log_schema.migrate(engine)
        assert set(log_schema.metadata.tables) | {log_schema.VERSION_TABLE} == set(
            sa.inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_a_log_from_before_write_times_is_adopted_and_its_records_dated(sql_url: str) -> None:
    """A log an older release made (no ``logged_at``, no version table) is adopted when a
    store opens it: its records are kept and dated by their decision time, new ones by when
    they are written, and the tables end exactly as the code describes them."""
    first = SqlDecisionStore(sql_url)
    first.write([SAMPLES[0]])
    first.close()
    engine = create_engine(sql_url, what="the test's decision log")
    as_an_older_release_left_it(engine, "0001")
    columns = {column["name"] for column in sa.inspect(engine).get_columns("decisions")}
    assert "logged_at" not in columns
    written_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    adopted = SqlDecisionStore(sql_url, now=lambda: written_at)
    reader = SqlDecisionReader(sql_url)
    try:
        adopted.write([SAMPLES[1]])
        logged = [(entry.record, entry.logged_at) for entry in reader.since(None, 10)]
        assert [(SAMPLES[0], SAMPLES[0].decided_at), (SAMPLES[1], written_at)] == logged
        assert HEAD == revision_of(engine)
        assert [] == differences(engine)
    finally:
        reader.close()
        adopted.close()
        engine.dispose()


def test_a_log_with_write_times_but_no_migrations_is_adopted_as_it_is(sql_url: str) -> None:
    """The release that added ``logged_at`` in place left it filled: adopting keeps every
    value and adds only what is new since (the terminal index)."""
    written_at = datetime(2029, 5, 6, 7, 8, 9, tzinfo=UTC)
    first = SqlDecisionStore(sql_url, now=lambda: written_at)
    first.write(SAMPLES[:2])
    first.close()
    engine = create_engine(sql_url, what="the test's decision log")
    as_an_older_release_left_it(engine, "0003")
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("decisions")}
    assert "ix_decisions_terminal" not in indexes
    adopted = SqlDecisionStore(sql_url)
    reader = SqlDecisionReader(sql_url)
    try:
        assert len(SAMPLES[:2]) == adopted.count()
        assert [written_at, written_at] == [entry.logged_at for entry in reader.since(None, 10)]
        assert HEAD == revision_of(engine)
        assert [] == differences(engine)
    finally:
        reader.close()
        adopted.close()
        engine.dispose()


def test_the_review_tables_and_the_decision_log_share_one_database(sql_url: str) -> None:
    """Both schemas migrate in one database, each with its own version table, and each
    finds exactly its own tables as its code describes them."""
    review = ReviewDatabase(sql_url)
    store = SqlDecisionStore(sql_url)
    engine = create_engine(sql_url, what="the test's database")
    try:
        store.write(SAMPLES[:1])
        review.ensure_schema()
        tables = set(sa.inspect(engine).get_table_names())
        assert set(log_schema.metadata.tables) | {log_schema.VERSION_TABLE} <= tables
        assert set(review_schema.metadata.tables) | {review_schema.VERSION_TABLE} <= tables
        assert HEAD == revision_of(engine)
        assert [] == differences(engine)
        assert [] == differences(engine, review_schema.metadata, review_schema.VERSION_TABLE)
    finally:
        engine.dispose()
        store.close()
        review.close()


def test_replicas_opening_a_new_postgres_log_together_migrate_it_once() -> None:
    """Four stores opened at once on an empty PostgreSQL schema all start and all write."""
    with postgres_schema_url() as url:
        stores: list[SqlDecisionStore] = []
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def open_and_write(number: int) -> None:
            try:
                start.wait()
                store = SqlDecisionStore(url)
                stores.append(store)
                store.write([make_record(number)])
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        try:
            assert [] == errors
            assert 4 == stores[0].count()
        finally:
            for store in stores:
                store.close()


def test_a_terminals_history_is_read_through_its_index(tmp_path: Path) -> None:
    """SQLite's plan for the case page's terminal history uses ``ix_decisions_terminal``
    rather than scanning the log."""
    url = f"sqlite:///{tmp_path}/decisions.db"
    SqlDecisionStore(url).write([make_record(number) for number in range(50)])
    reader = SqlDecisionReader(url)
    engine = create_engine(url, what="the test's decision log")
    try:
        before = SAMPLES[0].decided_at + timedelta(days=1)
        assert 10 == len(reader.terminal_history("term-1", before))
        query = (
            sa.select(log_schema.decisions)
            .where(
                log_schema.decisions.c.terminal_id == "term-1",
                log_schema.decisions.c.decided_at < before,
            )
            .order_by(log_schema.decisions.c.decided_at.desc())
            .limit(20)
        )
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        assert any("ix_decisions_terminal" in str(step) for step in plan), plan
    finally:
        engine.dispose()
        reader.close()


def test_a_log_migrated_by_a_newer_release_is_refused_with_the_reason(tmp_path: Path) -> None:
    """A database at a revision this release does not know is a StoreError that says so,
    not a crash and not a silent misreading of its tables."""
    url = f"sqlite:///{tmp_path}/decisions.db"
    SqlDecisionStore(url).close()
    engine = create_engine(url, what="the test's decision log")
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {log_schema.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    store = SqlDecisionStore(url)
    try:
        with pytest.raises(StoreError, match="newer release"):
            store.write(SAMPLES[:1])
    finally:
        store.close()
