"""Staff roles, handoff tickets, and the pairing of relayed messages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.BigInteger, nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("participants.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.BigInteger, nullable=True),
        sa.Column("card_message_id", sa.BigInteger, nullable=True),
        sa.Column("share_answers", sa.Boolean, nullable=False),
        sa.Column("claimed_by", sa.BigInteger, nullable=True),
        sa.Column("assigned_to", sa.BigInteger, nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_tickets_user", "tickets", ["user_id", "status"])
    op.create_index("ix_tickets_thread", "tickets", ["thread_id"])
    op.create_table(
        "relayed",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("staff_message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("direction", sa.String(4), nullable=False),
    )
    op.create_index("ix_relayed_staff", "relayed", ["staff_message_id"])


def downgrade() -> None:
    op.drop_table("relayed")
    op.drop_table("tickets")
    op.drop_table("staff")
