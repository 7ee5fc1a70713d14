"""The review tables as SQLAlchemy Core metadata: what the migrations build, and the code reads.

The migrations in ``migrations/versions`` create these tables step by step; a test compares
the migrated database with this metadata, so the two cannot drift apart. Every time is
stored in UTC (SQLite keeps the digits without an offset, so every bound time is UTC).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# PostgreSQL keeps JSON as JSONB so audits can query into details and decision records.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

VERSION_TABLE = "review_schema_version"
"""Alembic's version table, named apart from ``alembic_version`` so the review tables can
share a database with other migrated schemas (the decision log, an MLflow registry)."""

cases = sa.Table(
    "review_cases",
    metadata,
    sa.Column("transaction_id", sa.String, primary_key=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("card_id", sa.String, nullable=False),
    sa.Column("terminal_id", sa.String, nullable=False),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("expected_loss", sa.Float, nullable=False),
    sa.Column("record", JSON, nullable=False),
    sa.Column("decided_at", UTC_TIME, nullable=False),
    sa.Column("opened_at", UTC_TIME, nullable=False),
    sa.Column("due_at", UTC_TIME, nullable=False),
    sa.Column("locked_by", sa.String, nullable=True),
    sa.Column("locked_until", UTC_TIME, nullable=True),
    sa.Column("escalated_by", sa.String, nullable=True),
    sa.Column("escalated_at", UTC_TIME, nullable=True),
    sa.Column("escalation_note", sa.Text, nullable=True),
    sa.Column("verdict", sa.String, nullable=True),
    sa.Column("verdict_by", sa.String, nullable=True),
    sa.Column("verdict_at", UTC_TIME, nullable=True),
    sa.Column("verdict_note", sa.Text, nullable=True),
    sa.Index("ix_review_cases_queue", "status", "kind", "card_id", "expected_loss"),
    sa.Index("ix_review_cases_decided_at", "decided_at"),
)

users = sa.Table(
    "review_users",
    metadata,
    sa.Column("username", sa.String, primary_key=True),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("password_hash", sa.String, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)

audit = sa.Table(
    "review_audit",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("at", UTC_TIME, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("subject", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", JSON, nullable=False),
    sa.Index("ix_review_audit_at", "at"),
)

intake_cursors = sa.Table(
    "review_intake_cursors",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("logged_at", UTC_TIME, nullable=False),
    sa.Column("transaction_id", sa.String, nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)

sign_in_failures = sa.Table(
    "review_sign_in_failures",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String, nullable=False),
    sa.Column("at", UTC_TIME, nullable=False),
    sa.Index("ix_review_sign_in_failures_key", "key", "at"),
    sa.Index("ix_review_sign_in_failures_at", "at"),
)
