"""The schema, as SQLAlchemy Core tables. Change it only through a migration in migrations/versions/."""

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def claim_columns() -> tuple[Column[str], Column[dt.datetime]]:
    """Which worker holds a row (bot.claims: "host:pid:token") and until when; NULL or a lease past: anyone's."""
    return (
        Column("claimed_by", String(120), nullable=True),
        Column("lease_until", DateTime(timezone=True), nullable=True),
    )


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
    # The command menu last set for their chat, "<language>:<version>" (bot.telegram.menus); NULL: none yet.
    Column("menu", String(24), nullable=True),
    # What of theirs the anonymous counts already hold (bot.insights.tally: "q:<question>", "day:<date>", ...), so
    # each person is counted once per milestone; it goes with them.
    Column("counted", Text, nullable=True),
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

# The directory an NGO keeps (imported from YAML/CSV, edited by admins); list fields are JSON arrays.
organisations = Table(
    "organisations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("offers", JSON, nullable=False),
    Column("languages", JSON, nullable=False),
    Column("nationalities", JSON, nullable=False),
    Column("regions", JSON, nullable=False),
    Column("intake_chat_id", BigInteger, nullable=True),
    Column("website", String(200), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("email", String(120), nullable=True),
    Column("members", JSON, nullable=False),
    Column("weekly_capacity", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per person shared with one organisation (only after they tapped Share); never twice the same pair.
# `week` (ISO, "2026-W47") is what weekly capacity counts. When the person is deleted the row keeps no identity
# (user_id becomes NULL): the organisation's counts stay right, nothing points back at the person.
referrals = Table(
    "referrals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("participants.user_id", ondelete="SET NULL"), nullable=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("week", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("card_chat_id", BigInteger, nullable=True),
    Column("card_message_id", BigInteger, nullable=True),
    # The person's "request sent" message, whose Withdraw button goes once the organisation decides.
    Column("notice_message_id", BigInteger, nullable=True),
    UniqueConstraint("user_id", "org_id", name="uq_referrals_user_org"),
    Index("ix_referrals_org_week", "org_id", "week"),
    Index("ix_referrals_status", "status"),
)

# Messages waiting for their turn to a rate-limited chat, in order per chat. A row is pending until `sent_at`
# (with the message id Telegram gave) or `failed` (why, for a refusal that retrying cannot fix). `payload` holds
# what to send: {"text": ...} or {"from_chat_id": ..., "message_id": ...} for a copy.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("thread_id", BigInteger, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("sent_message_id", BigInteger, nullable=True),
    Column("failed", String(200), nullable=True),
    *claim_columns(),
    Index("ix_outbox_chat_pending", "chat_id", "sent_at", "failed", "id"),
)

# Staff roles granted by admins (admins themselves come from configuration, ADMIN_IDS).
staff = Table(
    "staff",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role", String(16), nullable=False),
    Column("granted_by", BigInteger, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

# A person's request to talk to a human. `thread_id` is their forum topic in the staff group (kept for their next
# ticket); `share_answers` is whether they agreed that staff see their answers.
tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("participants.user_id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("thread_id", BigInteger, nullable=True),
    Column("card_message_id", BigInteger, nullable=True),
    Column("share_answers", Boolean, nullable=False),
    Column("claimed_by", BigInteger, nullable=True),
    Column("assigned_to", BigInteger, nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("reminded_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    # When staff first wrote to the person (the anonymous counts keep how long that took).
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Index("ix_tickets_user", "user_id", "status"),
    Index("ix_tickets_thread", "thread_id"),
)

# Which staff-group message is the copy of which private message (and back), so replies and edits land on the
# right message. No content is kept: Telegram holds the messages.
relayed = Table(
    "relayed",
    metadata,
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("user_message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("staff_message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("direction", String(4), nullable=False),
    Index("ix_relayed_staff", "staff_message_id"),
)

# An NGO's message to many people. A draft while an admin composes it (`step` is where the composer is), then
# queued, scheduled, running, paused, cancelled or done. `versions` holds each language's message
# ({"es": {"text": ..., "photo": file_id | None, "document": file_id | None}}); `audience` the segment's filters.
# `report` keeps the final counts, which stay right after recipients delete themselves.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_by", BigInteger, nullable=False),
    Column("language", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("step", String(24), nullable=True),
    Column("versions", JSON, nullable=False),
    Column("fallback", String(8), nullable=True),
    Column("audience", JSON, nullable=False),
    Column("scheduled_for", DateTime(timezone=True), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("progress_message_id", BigInteger, nullable=True),
    Column("report", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # Here the claim says which worker reports the broadcast's progress to the admin (bot.broadcast).
    *claim_columns(),
    Index("ix_broadcasts_status", "status"),
)

# One row per person a broadcast goes to, fixed when it starts. A person who deletes themselves takes their rows
# with them. `reason` is Telegram's refusal, never the message.
broadcast_recipients = Table(
    "broadcast_recipients",
    metadata,
    Column("broadcast_id", Integer, ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "user_id",
        BigInteger,
        ForeignKey("participants.user_id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("chat_id", BigInteger, nullable=False),
    Column("language", String(8), nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reason", String(120), nullable=True),
    Column("done_at", DateTime(timezone=True), nullable=True),
    *claim_columns(),
    Index("ix_broadcast_recipients_status", "broadcast_id", "status", "user_id"),
)

# People who get no broadcasts: they sent /stop ("stopped"), or Telegram refused them because they blocked the
# bot or their account is gone ("unreachable", which lapses once they write to the bot again). No row: subscribed.
broadcast_optouts = Table(
    "broadcast_optouts",
    metadata,
    Column("user_id", BigInteger, ForeignKey("participants.user_id", ondelete="CASCADE"), primary_key=True),
    Column("reason", String(12), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Choices an admin made from Telegram that outlive a restart (the active program), with who and when.
deployment = Table(
    "deployment",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("changed_by", BigInteger, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# Anonymous counts by day (bot.storage.stats): no person id, nothing finer than a day, only the bot's own
# vocabulary in the breakdowns. Kept when people are erased.
stats = Table(
    "stats",
    metadata,
    Column("day", Date, primary_key=True),
    Column("metric", String(24), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("program_id", String(64), primary_key=True),
    Column("language", String(8), primary_key=True),
    Column("outcome", String(32), primary_key=True),
    Column("nationality", String(32), primary_key=True),
    Column("location", String(32), primary_key=True),
    Column("count", Integer, nullable=False),
)

# One-time sign-in links to the web console (bot.web.links): only the SHA-256 of the token is kept, so a copy of
# the database signs nobody in. A link is used at most once (`used_at`) and not after `expires_at`.
web_links = Table(
    "web_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)
