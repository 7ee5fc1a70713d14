"""An index on a terminal's decisions by time: the case page's terminal history.

Without it, reading a terminal's recent decisions scanned the whole log.

Revision ID: 0004
Revises: 0003
Created: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_decisions_terminal", "decisions", ["terminal_id", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_decisions_terminal", table_name="decisions")
