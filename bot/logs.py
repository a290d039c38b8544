"""Structured logs that carry no personal data: no names, no texts, no answers; user ids hashed with a secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
import traceback
from typing import Any

_secret = secrets.token_bytes(32)

#: Attributes every LogRecord has; anything else was passed in `extra=` and is emitted as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def set_id_secret(secret: str | None) -> None:
    """Hash ids with a stable secret so one person's lines can be followed across restarts (never reversed)."""
    global _secret
    if secret:
        _secret = secret.encode()


def hashed(user_id: int | None) -> str:
    if user_id is None:
        return "-"
    return hmac.new(_secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            # The exception's type and traceback, not its message: a message can quote user input.
            exc_type = record.exc_info[0]
            payload["error"] = exc_type.__name__ if exc_type else "unknown"
            payload["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(payload, ensure_ascii=False, default=str)


#: Libraries that log payloads at DEBUG or INFO: aiosqlite and SQLAlchemy log SQL with its parameters (user ids,
#: answers). They stay at WARNING whatever LOG_LEVEL says.
_PAYLOAD_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg")


def guard_third_party() -> None:
    for name in _PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # aiogram logs every handled update at INFO; its ids are not personal, but the volume is noise.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    guard_third_party()
