"""The intake follows the decision log in the order it was written, not decided.

The cursor's position is now a ``logged_at`` (the decision log's write time). A saved
position keeps its meaning: the decision log fills ``logged_at`` of the records it held
before with their ``decided_at``.

Revision ID: 0003
Revises: 0002
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_intake_cursors") as batch:
        batch.alter_column("decided_at", new_column_name="logged_at")


def downgrade() -> None:
    with op.batch_alter_table("review_intake_cursors") as batch:
        batch.alter_column("logged_at", new_column_name="decided_at")
