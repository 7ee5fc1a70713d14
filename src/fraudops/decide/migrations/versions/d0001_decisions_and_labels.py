"""The decision log: decisions with what they were made from, and labels.

Releases before these migrations created the same tables without them; such a database
already holds them, and this revision leaves them as they are (later revisions bring them
up to date).

Revision ID: 0001
Revises:
Created: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "decisions" not in existing:
        op.create_table(
            "decisions",
            sa.Column("transaction_id", sa.String, primary_key=True),
            sa.Column("decided_at", UTC_TIME, nullable=False),
            sa.Column("tx_timestamp", UTC_TIME, nullable=False),
            sa.Column("customer_id", sa.String, nullable=False),
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
        )
        op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
        op.create_index("ix_decisions_customer_id", "decisions", ["customer_id"])
    if "labels" not in existing:
        op.create_table(
            "labels",
            sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
            sa.Column("transaction_id", sa.String, nullable=False),
            sa.Column("is_fraud", sa.Boolean, nullable=False),
            sa.Column("source", sa.String, nullable=False),
            sa.Column("known_at", UTC_TIME, nullable=False),
            sa.Column("received_at", UTC_TIME, nullable=False, server_default=sa.func.now()),
            sa.UniqueConstraint("transaction_id", "source", "known_at", name="uq_labels_label"),
        )
        op.create_index("ix_labels_transaction_id", "labels", ["transaction_id"])


def downgrade() -> None:
    op.drop_table("labels")
    op.drop_table("decisions")
