"""The review database: one engine for cases, users and the audit trail, migrated on open.

SQLite (``sqlite:///path``, the embedded default) or PostgreSQL
(``postgresql+psycopg://…``), chosen by the URL alone. The schema is built and upgraded by
the Alembic migrations in ``migrations/`` when the database is first used (run by
:mod:`fraudops.migrations`: no ``alembic.ini``; on PostgreSQL replicas starting together
migrate once).

If the database is down when it is opened, opening still succeeds and the migration is
retried by the next call, so a service can start during an outage. Every database failure
is a :class:`~fraudops.errors.StoreError` naming the operation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
import structlog
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError

from fraudops import migrations
from fraudops.errors import StoreError
from fraudops.sql import create_engine, store_error

_log = structlog.get_logger("fraudops.review")

_MIGRATIONS = Path(__file__).parent / "migrations"
_WHAT = "review store"
# Any fixed number: the key of the advisory lock the review migrations hold on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x5E7_1E77


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The Alembic config of the review migrations (on ``connection``, if given)."""
    return migrations.alembic_config(_MIGRATIONS, connection)


def migrate(engine: sa.Engine) -> None:
    """Upgrade the review tables in ``engine``'s database to the newest revision."""
    migrations.migrate(engine, _MIGRATIONS, lock_key=_MIGRATION_LOCK_KEY, what=_WHAT)


class ReviewDatabase:
    """The engine the review stores share, migrated to the newest schema before first use."""

    def __init__(self, url: str, *, connect_timeout_s: float = 2.0) -> None:
        self.url = url
        self.engine = create_engine(
            url, what="review database", connect_timeout_s=connect_timeout_s
        )
        self._schema_lock = threading.Lock()
        self._schema_ready = threading.Event()
        try:
            self.ensure_schema()
        except StoreError as exc:
            _log.warning("review.schema_deferred", error=str(exc))

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def ensure_schema(self) -> None:
        """Run the migrations once; a failure is retried by the next call."""
        if self._schema_ready.is_set():
            return
        with self._schema_lock:
            if self._schema_ready.is_set():
                return
            try:
                migrate(self.engine)
            except SQLAlchemyError as exc:
                raise store_error("migrate the schema", exc, what=_WHAT) from exc
            self._schema_ready.set()

    @contextmanager
    def begin(self, operation: str) -> Iterator[sa.Connection]:
        """A connection in a transaction that commits on success; failures are StoreErrors."""
        self.ensure_schema()
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise store_error(operation, exc, what=_WHAT) from exc

    def ping(self) -> None:
        """Return if the database answers; raise StoreError if not."""
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise store_error("ping", exc, what=_WHAT) from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
