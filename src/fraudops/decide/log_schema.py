"""The decision log's tables as SQLAlchemy Core metadata, described once.

The decision log writes ``decisions`` and ``labels``, the shadow scorer writes
``shadow_scores``; the review intake, the case page's histories and the model comparison
read them. All of them use these descriptions, the migrations in ``migrations/versions``
build them, and a test compares the migrated database with this metadata, so none can
drift apart. Every time is stored in UTC (SQLite keeps the digits without an offset, so
every bound time is UTC).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.dialects import postgresql

from fraudops import migrations

metadata = sa.MetaData()

# PostgreSQL keeps JSON as JSONB so audits can query into features and reasons.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

VERSION_TABLE = "decision_log_schema_version"
"""Alembic's version table, named apart from the review database's so both schemas can
share one database."""

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("transaction_id", sa.String, primary_key=True),
    sa.Column("decided_at", UTC_TIME, nullable=False, index=True),
    sa.Column("tx_timestamp", UTC_TIME, nullable=False),
    sa.Column("customer_id", sa.String, nullable=False, index=True),
    sa.Column("terminal_id", sa.String, nullable=False),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("currency", sa.String, nullable=False),
    sa.Column("transaction", JSON, nullable=False),
    sa.Column("features", JSON, nullable=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("reasons", JSON, nullable=False),
    sa.Column("rule_hits", JSON, nullable=False),
    sa.Column("model_version", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("degraded", sa.Boolean, nullable=False),
    sa.Column("degraded_reason", sa.String, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("trace_id", sa.String, nullable=True),
    # When the log wrote the record (the writer's clock). Readers that tail the log follow
    # this, not decided_at: a decision written late (buffered or spilled through an outage of
    # this database) is then new to them rather than behind their cursor. Nullable because
    # records written before the column existed had none until migration 0002 filled them.
    sa.Column("logged_at", UTC_TIME, nullable=True),
    sa.Index("ix_decisions_logged", "logged_at", "transaction_id"),
    # A case page shows the terminal's recent decisions.
    sa.Index("ix_decisions_terminal", "terminal_id", "decided_at"),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.String, nullable=False, index=True),
    sa.Column("is_fraud", sa.Boolean, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("known_at", UTC_TIME, nullable=False),
    sa.Column("received_at", UTC_TIME, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("transaction_id", "source", "known_at", name="uq_labels_label"),
)

shadow_scores = sa.Table(
    "shadow_scores",
    metadata,
    sa.Column("transaction_id", sa.String, primary_key=True),
    sa.Column("model_version", sa.String, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("scored_at", UTC_TIME, nullable=False, index=True),
)


_MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: the key of the advisory lock these migrations hold on PostgreSQL.
_MIGRATION_LOCK_KEY = 0xDEC_15_10


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The Alembic config of the decision log's migrations (on ``connection``, if given)."""
    return migrations.alembic_config(_MIGRATIONS, connection)


def migrate(engine: sa.Engine) -> None:
    """Build or upgrade the decision log's tables in ``engine``'s database to the newest
    revision. A database made before these migrations is adopted: its tables are kept."""
    migrations.migrate(engine, _MIGRATIONS, lock_key=_MIGRATION_LOCK_KEY, what="decision log")
