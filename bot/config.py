"""Settings from the environment or a .env file (every one is documented in .env.example)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.hours import DigestTime, OfficeHours


class Settings(BaseSettings):
    # An empty value (`STAFF_CHAT_ID=` as in .env.example) means "not set": the default applies.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    bot_token: SecretStr | None = None
    #: Where the Bot API lives: Telegram's, a self-hosted telegram-bot-api server, or a test double.
    telegram_api_url: str = "https://api.telegram.org"
    #: May hold a password (postgresql+asyncpg://user:password@host/db): kept out of repr() like the secrets.
    database_url: str = Field(default="sqlite+aiosqlite:///data/puente.db", repr=False)
    #: The program (questionnaire + dated ruleset) under flows/programs/ that the bot screens for.
    program: str = "venezuela-2022"
    default_language: Literal["es", "ht", "en"] = "es"
    #: Seconds a getUpdates long poll waits for news.
    polling_timeout: int = Field(default=25, ge=1, le=50)
    #: Webhook mode (`python -m bot serve --webhook`): the public HTTPS URL Telegram posts updates to (a reverse
    #: proxy in front forwards it; its path is the path the bot serves), the address the bot's own web server
    #: listens on, the secret Telegram sends back with every update (1-256 of A-Z a-z 0-9 _ -), and how many
    #: updates Telegram may have in flight at once.
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1:8080"
    webhook_secret: SecretStr | None = None
    webhook_max_connections: int = Field(default=40, ge=1, le=100)
    #: Several webhook workers of one bot (on one PostgreSQL database) share each person's turn, Telegram's send
    #: pace and the scheduled jobs through this Redis ("redis://127.0.0.1:6379/0"); empty: one process. May hold a
    #: password, so it is kept out of repr(). Long polling is one process and does not use it.
    redis_url: str | None = Field(default=None, repr=False)
    #: Where /healthz, /readyz and /metrics get their own web server ("127.0.0.1:9090"); empty: none of their own
    #: (in webhook mode they are on the webhook server too). Keep it off the public internet.
    ops_listen: str | None = None
    #: The web console (bot/web: preview, insights, texts) served beside the bot on this address
    #: ("127.0.0.1:8081"); empty: not served by the bot (`python -m bot web` serves it on its own).
    web_listen: str | None = None
    #: The console's address as staff's browsers reach it (the /web sign-in links start with it); empty:
    #: http://WEB_LISTEN (or http://127.0.0.1:8081).
    web_public_url: str | None = None
    #: Key that signs the console's session cookies; empty: a new one each start (everyone signs in again).
    web_secret: SecretStr | None = None
    #: The bot's event loop: uvloop (aiogram's `fast` extra: the loop and its sockets in C), or Python's own
    #: asyncio loop. Where uvloop is not installed (it does not build on Windows) asyncio's is used either way.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    log_level: str = "INFO"
    #: Secret for hashing user ids in logs; set it to follow one person's lines across restarts.
    log_id_secret: SecretStr | None = None
    #: People inactive this many days (no answer saved, no conversation with staff) are erased as /delete would;
    #: messages the outbox sent or gave up on are dropped after as long.
    retention_days: int = Field(default=90, ge=1)
    #: How often the retention purge runs (seconds); it also runs once at startup.
    retention_check_seconds: float = Field(default=3600.0, gt=0)
    #: Telegram user ids of the NGO staff who may use the admin commands, comma-separated.
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_accepts_the_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("WEBHOOK_SECRET takes 1 to 256 of the characters A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    # ---- talking to a person (handoff); off while STAFF_CHAT_ID is empty
    #: The staff supergroup (with forum topics: one topic per person; a plain group works through replies).
    staff_chat_id: int | None = None
    #: Language of the texts staff read in the group (ticket cards, notices).
    staff_language: Literal["es", "ht", "en"] = "es"
    #: When someone is on duty, "mon-fri 09:00-17:00" (or one day, "sat 10:00-12:00"), in OFFICE_TIMEZONE. People
    #: read it in their language, written from these two settings (bot/hours.py).
    office_hours: str = "mon-fri 09:00-17:00"
    office_timezone: str = "America/Mexico_City"
    #: Staff messages in a topic starting with this stay internal.
    note_marker: str = "#"
    #: Post a reminder when a ticket has waited this long (seconds) without anyone taking it.
    remind_after_seconds: int = Field(default=1800, ge=1)
    #: How often the bot looks for tickets waiting too long (seconds).
    reminder_check_seconds: float = Field(default=60.0, gt=0)
    #: Telegram's limit for one group: this many messages per window.
    group_messages_per_window: int = Field(default=20, ge=1)
    group_window_seconds: float = Field(default=60.0, gt=0)
    #: Post the last 7 days' figures (/stats) to the staff group once a week, e.g. "mon 09:00" in OFFICE_TIMEZONE
    #: (bot/digest.py); empty: no digest.
    stats_digest: str = ""
    #: How often the bot looks whether the digest is due (seconds).
    stats_digest_check_seconds: float = Field(default=60.0, gt=0)

    # ---- flood control, per person (the staff group is not limited)
    #: Messages or taps one person may send at once; past that the bot answers FLOOD_RATE a second, skips the rest
    #: (nothing of them is read or stored) and asks them once to slow down.
    flood_burst: int = Field(default=6, ge=1)
    flood_rate: float = Field(default=1.0, gt=0)

    # ---- broadcasts (/broadcast)
    #: Messages per second the bot sends in all: Telegram's free limit is about 30 (raise it only for a test server).
    send_rate: float = Field(default=30.0, gt=0)
    #: Messages a second to one private chat, replies and edits included (Telegram: about 1), after a burst of
    #: PRIVATE_CHAT_BURST at once (about 3). A chat waiting for its pace holds up no other chat.
    private_chat_rate: float = Field(default=1.0, gt=0)
    private_chat_burst: int = Field(default=3, ge=1)
    #: Send broadcasts as paid broadcasts (allow_paid_broadcast: up to 1,000 a second, 0.1 Telegram Star each,
    #: taken from the bot's balance). Off: broadcasts share the free 30 a second, behind people's replies.
    paid_broadcast: bool = False
    paid_broadcast_rate: float = Field(default=1000.0, gt=0, le=1000.0)
    #: Broadcast sends in flight at once (they still wait for the rate); empty: enough for the rate.
    broadcast_concurrency: int | None = Field(default=None, ge=1, le=500)

    @model_validator(mode="after")
    def _office_hours_readable(self) -> Settings:
        """A typo in OFFICE_HOURS or OFFICE_TIMEZONE stops the start, saying what is expected."""
        self.office()
        self.digest_time()
        return self

    def office(self) -> OfficeHours:
        return OfficeHours.parse(self.office_hours, self.office_timezone)

    def digest_time(self) -> DigestTime | None:
        if not self.stats_digest.strip():
            return None
        return DigestTime.parse(self.stats_digest, self.office().zone)

    def broadcast_in_flight(self) -> int:
        """Sends in flight needed to keep the broadcast rate with about 150 ms per Bot API call, at least 16."""
        if self.broadcast_concurrency is not None:
            return self.broadcast_concurrency
        rate = self.paid_broadcast_rate if self.paid_broadcast else self.send_rate
        return max(16, min(500, math.ceil(rate * 0.15)))

    #: How often the admin's progress message is edited, at most (seconds).
    broadcast_progress_seconds: float = Field(default=5.0, ge=1.0)
