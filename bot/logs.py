"""Structured logs that carry no personal data: no names, no texts, no answers; user ids hashed with a secret.

What a line may hold is decided here, whoever logs: the event is the logger's message *template*, never filled in
with its arguments (aiogram writes "Failed to fetch updates - %s: %s" with an exception whose text can hold a whole
update, names and messages included; SQLAlchemy and aiosqlite log statements with their parameters); fields passed
in `extra=` are kept only from Puente's own loggers, with anything in double quotes blanked (Telegram's error
descriptions quote pieces of the message they refused); an exception is its type and traceback, never its message;
and registered secrets (the bot token) are blanked from every line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
import traceback
from typing import Any

_secret = secrets.token_bytes(32)
_hidden: set[str] = set()

#: Attributes every LogRecord has; anything else was passed in `extra=` and is emitted as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Loggers whose events are Puente's own constant strings, with data only in reviewed `extra=` fields.
_OWN = ("bot", "__main__")
# A quote left open counts to the end: callers cut descriptions short, often inside the quoted part.
_DOUBLE_QUOTED = re.compile(r'"[^"\n]*(?:"|$)')
_ANY_QUOTED = re.compile(r"'[^'\n]*(?:'|$)" + r'|"[^"\n]*(?:"|$)')
#: A library's message template is cut here: some build it themselves, with data in it (asyncio's
#: "Exception in callback <the callback and its arguments>").
_FOREIGN_EVENT_CHARS = 120


def set_id_secret(secret: str | None) -> None:
    """Hash ids with a stable secret so one person's lines can be followed across restarts (never reversed)."""
    global _secret
    if secret:
        _secret = secret.encode()


def hide(value: str | None) -> None:
    """Never write this value (a token, a password in a URL) in any line, whoever logs it."""
    if value and len(value) >= 8:
        _hidden.add(value)


def hashed(user_id: int | None) -> str:
    if user_id is None:
        return "-"
    return hmac.new(_secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:12]


def _own(name: str) -> bool:
    return any(name == own or name.startswith(f"{own}.") for own in _OWN)


def _event(record: logging.LogRecord, own: bool) -> str:
    """The message template without its arguments; a library's only up to its first line, quotes blanked."""
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    if own:
        return template
    first = template.split("\n", 1)[0]
    return _ANY_QUOTED.sub("'…'", first)[:_FOREIGN_EVENT_CHARS]


def _field(value: Any) -> Any:
    """An `extra=` value with quoted pieces blanked, in nested lists and dicts too."""
    if isinstance(value, str):
        return _DOUBLE_QUOTED.sub('"…"', value)
    if isinstance(value, (list, tuple)):
        return [_field(v) for v in value]
    if isinstance(value, dict):
        return {k: _field(v) for k, v in value.items()}
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        own = _own(record.name)
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _event(record, own),
        }
        if own:
            payload.update({k: _field(v) for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            # The exception's type and traceback, not its message: a message can quote user input.
            exc_type = record.exc_info[0]
            payload["error"] = exc_type.__name__ if exc_type else "unknown"
            payload["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        line = json.dumps(payload, ensure_ascii=False, default=str)
        for value in _hidden:
            line = line.replace(value, "[hidden]")
        return line


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
