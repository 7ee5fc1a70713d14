"""Each decision record says when the log wrote it (``logged_at``): readers tail by it.

A record already stored gets its ``decided_at``, the best estimate of when it was written,
so a saved tailing position keeps its meaning. A database whose table already has the
column (releases before these migrations added it in place) is left as it is. Filling the
column is one UPDATE: a one-time cost on a large log.

Revision ID: 0002
Revises: 0001
Created: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "logged_at" not in {column["name"] for column in inspector.get_columns("decisions")}:
        op.add_column("decisions", sa.Column("logged_at", sa.DateTime(timezone=True)))
        decisions = sa.table(
            "decisions",
            sa.column("decided_at", sa.DateTime(timezone=True)),
            sa.column("logged_at", sa.DateTime(timezone=True)),
        )
        op.execute(sa.update(decisions).values(logged_at=decisions.c.decided_at))
    if "ix_decisions_logged" not in {index["name"] for index in inspector.get_indexes("decisions")}:
        op.create_index("ix_decisions_logged", "decisions", ["logged_at", "transaction_id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_logged", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("logged_at")
