"""Index the queue: waiting cases by status, kind and card, with their expected loss.

Ranking cards by their costliest waiting case then reads the index alone, not the table's
wide rows; it replaces the (status, card_id) index, which it covers.

Revision ID: 0002
Revises: 0001
Created: 2026-05-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_review_cases_queue", "review_cases", ["status", "kind", "card_id", "expected_loss"]
    )
    op.drop_index("ix_review_cases_status_card", "review_cases")


def downgrade() -> None:
    op.create_index("ix_review_cases_status_card", "review_cases", ["status", "card_id"])
    op.drop_index("ix_review_cases_queue", "review_cases")
