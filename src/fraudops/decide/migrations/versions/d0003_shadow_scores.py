"""The challenger's shadow scores, beside the decisions they shadow.

Releases before these migrations created the table when the shadow scorer first wrote;
a database that has it keeps it as it is.

Revision ID: 0003
Revises: 0002
Created: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("shadow_scores"):
        return
    op.create_table(
        "shadow_scores",
        sa.Column("transaction_id", sa.String, primary_key=True),
        sa.Column("model_version", sa.String, primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_shadow_scores_scored_at", "shadow_scores", ["scored_at"])


def downgrade() -> None:
    op.drop_table("shadow_scores")
