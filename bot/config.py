"""Settings from the environment or a .env file (every one is documented in .env.example)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    #: Where the Bot API lives: Telegram's, a self-hosted telegram-bot-api server, or a test double.
    telegram_api_url: str = "https://api.telegram.org"
    database_url: str = "sqlite+aiosqlite:///data/puente.db"
    #: The program (questionnaire + dated ruleset) under flows/programs/ that the bot screens for.
    program: str = "venezuela-2022"
    default_language: Literal["es", "ht", "en"] = "es"
    #: Seconds a getUpdates long poll waits for news.
    polling_timeout: int = Field(default=25, ge=1, le=50)
    log_level: str = "INFO"
    #: Secret for hashing user ids in logs; set it to follow one person's lines across restarts.
    log_id_secret: SecretStr | None = None
    #: Telegram user ids of the NGO staff who may use the admin commands, comma-separated.
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        return value
