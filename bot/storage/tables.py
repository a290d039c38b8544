"""The schema, as SQLAlchemy Core tables. Change it only through a migration in migrations/versions/."""

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, MetaData, String, Table

metadata = MetaData()

participants = Table(
    "participants",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("language", String(8), nullable=False),
    Column("consented_at", DateTime(timezone=True), nullable=False),
    Column("program_id", String(64), nullable=False),
    Column("node", String(32), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per answered question on the current path; `position` orders them, which is the Back history.
answers = Table(
    "answers",
    metadata,
    Column("user_id", BigInteger, ForeignKey("participants.user_id", ondelete="CASCADE"), primary_key=True),
    Column("question_id", String(32), primary_key=True),
    Column("option_id", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False),
)

# Telegram may deliver an update twice (an offset not yet confirmed when the bot died): applied ids are kept
# for a while so a repeat changes nothing. No user id here.
processed_updates = Table(
    "processed_updates",
    metadata,
    Column("update_id", BigInteger, primary_key=True, autoincrement=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, index=True),
)
