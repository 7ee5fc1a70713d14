"""SQL engines for fraudops's own databases: SQLite (embedded default) or PostgreSQL by URL.

The decision log, the review database and the readers of both open their engines here, so
every one gets the same choices: a SQLite file's folder is created, and its connections
use WAL with ``synchronous=FULL`` (a commit is durable when it returns); ``sqlite://``
alone is one shared in-memory database; PostgreSQL connections are pinged before use, so
a restarted server is reconnected rather than failing the next call. JSON columns go
through orjson. Failures are StoreErrors that name the database and the operation. Times
are bound in UTC (:func:`utc`) and read back as aware UTC (:func:`as_utc`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from fraudops.errors import ConfigError, StoreError

SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
POSTGRES_DRIVERS = frozenset({"postgresql", "postgresql+psycopg"})


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, *, what: str, connect_timeout_s: float = 2.0) -> sa.Engine:
    """An engine on ``url`` (``what`` names the database in errors).

    A malformed URL or a folder that cannot be made is a StoreError; a database kind other
    than SQLite or PostgreSQL is a ConfigError.
    """
    try:
        parsed = sa.make_url(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} URL is malformed: {exc}") from exc
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.drivername in SQLITE_DRIVERS:
        database = parsed.database or ":memory:"
        if database == ":memory:":
            # One shared connection, or every pooled connection would see its own empty DB.
            options["poolclass"] = StaticPool
            options["connect_args"] = {"check_same_thread": False}
        else:
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of {database}: {exc}") from exc
            options["connect_args"] = {"timeout": connect_timeout_s}
        engine = sa.create_engine(parsed, **options)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername in POSTGRES_DRIVERS:
        # libpq counts whole seconds and treats anything under 2 as 2.
        return sa.create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(2, math.ceil(connect_timeout_s))},
            **options,
        )
    raise ConfigError(
        f"{what} URL {parsed.drivername}:// is not supported: "
        "use sqlite:///path or postgresql+psycopg://…"
    )


def _sqlite_pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL makes each commit fsync the WAL: "durable on return", not only crash-safe.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def store_error(operation: str, exc: SQLAlchemyError, *, what: str) -> StoreError:
    """A StoreError naming the database and operation, with the driver's one-line message."""
    # The DBAPI's own message, not SQLAlchemy's, which repeats the SQL and the parameters.
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return StoreError(f"{what} {operation} failed: {type(cause).__name__}: {first_line}")


def as_utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives naive UTC back; PostgreSQL its session zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc(value: datetime) -> datetime:
    """A time to bind: aware and in UTC (SQLite keeps the digits and drops the offset)."""
    if value.tzinfo is None:
        raise ValueError(f"times given to a database must be timezone-aware: {value!r}")
    return value.astimezone(UTC)
