"""Failed sign-ins in the review database, so every replica enforces one limit.

Revision ID: 0004
Revises: 0003
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_sign_in_failures",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_sign_in_failures_key", "review_sign_in_failures", ["key", "at"])
    op.create_index("ix_review_sign_in_failures_at", "review_sign_in_failures", ["at"])


def downgrade() -> None:
    op.drop_table("review_sign_in_failures")
