"""Alembic migrations for fraudops's own databases, configured and run in code.

The decision log and the review database each keep their migrations in a ``migrations``
folder beside their code, with their own version table, so both can share one database.
No ``alembic.ini`` is needed: the config is built here, and the folder's ``env.py`` runs
the migrations on the connection the caller passes, inside the caller's transaction. On
PostgreSQL the upgrade holds an advisory lock, so replicas starting together migrate once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import IncludeNameFn, NameFilterParentNames, NameFilterType
from alembic.util import CommandError

from fraudops.errors import StoreError


def alembic_config(folder: Path, connection: sa.Connection | None = None) -> Config:
    """The Alembic config of the migrations in ``folder``.

    With ``connection``, the folder's ``env.py`` runs the migrations on it. Developers make
    a new revision with ``alembic.command.revision(alembic_config(folder), message=…)``.
    """
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: sa.Engine, folder: Path, *, lock_key: int, what: str) -> None:
    """Upgrade ``engine``'s database to the newest revision in ``folder``, in one transaction.

    ``lock_key`` is the PostgreSQL advisory lock held meanwhile: one fixed number per
    migrations folder. A database failure is SQLAlchemy's error, for the caller to report;
    a database at a revision this release does not know (a newer release migrated it) is a
    StoreError naming ``what``, since running against it would misread its tables.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Released when this transaction ends; a second replica waits, then finds head.
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))
        try:
            command.upgrade(alembic_config(folder, connection), "head")
        except CommandError as exc:
            raise StoreError(
                f"{what} schema cannot be brought up to date ({exc}): was it migrated by a"
                " newer release of fraudops? Run that release, or point this one at another"
                " database"
            ) from exc


def own_tables(metadata: sa.MetaData) -> IncludeNameFn:
    """Alembic's ``include_name`` filter for the tables of ``metadata`` alone.

    Schemas that share a database then never see each other's tables: comparing one with
    its metadata (a test, or ``revision --autogenerate``) would otherwise propose dropping
    the other's.
    """

    def include(name: str | None, kind: NameFilterType, _parents: NameFilterParentNames) -> bool:
        return kind != "table" or name in metadata.tables

    return include


def run_on_given_connection(version_table: str, target_metadata: sa.MetaData) -> None:
    """The body of a migrations folder's ``env.py``: run on the connection passed in."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "these migrations run on a connection given by fraudops.migrations.migrate"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        include_name=own_tables(target_metadata),
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
