"""The organisation directory and referrals to it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("offers", sa.JSON, nullable=False),
        sa.Column("languages", sa.JSON, nullable=False),
        sa.Column("nationalities", sa.JSON, nullable=False),
        sa.Column("regions", sa.JSON, nullable=False),
        sa.Column("intake_chat_id", sa.BigInteger, nullable=True),
        sa.Column("website", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("email", sa.String(120), nullable=True),
        sa.Column("members", sa.JSON, nullable=False),
        sa.Column("weekly_capacity", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("participants.user_id", ondelete="SET NULL"), nullable=True),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("card_chat_id", sa.BigInteger, nullable=True),
        sa.Column("card_message_id", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("user_id", "org_id", name="uq_referrals_user_org"),
    )
    op.create_index("ix_referrals_org_week", "referrals", ["org_id", "week"])
    op.create_index("ix_referrals_status", "referrals", ["status"])


def downgrade() -> None:
    op.drop_table("referrals")
    op.drop_table("organisations")
