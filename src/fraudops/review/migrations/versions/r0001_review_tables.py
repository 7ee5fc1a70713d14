"""The review tables: cases, users, the append-only audit trail and the intake cursors.

Revision ID: 0001
Revises:
Created: 2026-05-01
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

# The audit trail refuses UPDATE and DELETE in the database itself, not only in the code.
_SQLITE_GUARDS = [
    f"""CREATE TRIGGER review_audit_no_{verb.lower()} BEFORE {verb} ON review_audit
        BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END"""
    for verb in ("UPDATE", "DELETE")
]
_POSTGRES_GUARDS = [
    """CREATE FUNCTION review_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'review_audit is append-only'; END $$""",
    """CREATE TRIGGER review_audit_append_only BEFORE UPDATE OR DELETE ON review_audit
       FOR EACH ROW EXECUTE FUNCTION review_audit_append_only()""",
    """CREATE TRIGGER review_audit_no_truncate BEFORE TRUNCATE ON review_audit
       FOR EACH STATEMENT EXECUTE FUNCTION review_audit_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "review_cases",
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
    )
    op.create_index("ix_review_cases_status_card", "review_cases", ["status", "card_id"])
    op.create_index("ix_review_cases_decided_at", "review_cases", ["decided_at"])
    op.create_table(
        "review_users",
        sa.Column("username", sa.String, primary_key=True),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "review_audit",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", JSON, nullable=False),
    )
    op.create_index("ix_review_audit_at", "review_audit", ["at"])
    op.create_table(
        "review_intake_cursors",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("decided_at", UTC_TIME, nullable=False),
        sa.Column("transaction_id", sa.String, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    guards = _SQLITE_GUARDS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE review_audit")
        op.execute("DROP FUNCTION review_audit_append_only()")
    else:
        op.drop_table("review_audit")
    op.drop_table("review_intake_cursors")
    op.drop_table("review_users")
    op.drop_index("ix_review_cases_decided_at", "review_cases")
    op.drop_index("ix_review_cases_status_card", "review_cases")
    op.drop_table("review_cases")
