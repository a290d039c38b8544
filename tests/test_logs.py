"""What bot.logs writes, whoever logs: no message arguments, no exception messages, no quoted text, no token."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bot import logs

NAME = "Wilmarys"


def line(name: str, msg: object, *args: object, exc: BaseException | None = None, **extra: Any) -> dict[str, Any]:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args or None, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    written = logs.JsonFormatter().format(record)
    assert NAME not in written, written
    parsed: dict[str, Any] = json.loads(written)
    return parsed


def test_a_library_message_is_its_template() -> None:
    """aiogram's "Failed to fetch updates - %s: %s" carries an exception that can quote a whole update: the
    arguments are never filled in."""
    written = line(
        "aiogram.dispatcher", "Failed to fetch updates - %s: %s", "ClientDecodeError", f'{{"first_name": "{NAME}"}}'
    )
    assert written["event"] == "Failed to fetch updates - %s: %s"


def test_a_library_message_built_in_advance_keeps_only_its_first_line_without_quotes() -> None:
    """asyncio writes "Exception in callback <repr with arguments>" and details on the next lines."""
    written = line("asyncio", f"Exception in callback handle('{NAME}')\nhandle: <Handle {NAME}>")
    assert written["event"] == "Exception in callback handle('…')"


def test_a_library_extra_field_is_dropped() -> None:
    assert "text" not in line("aiohttp.client", "request", text=NAME)


def test_own_fields_stay_with_quoted_parts_blanked_even_when_cut_short() -> None:
    """Telegram's descriptions quote what they refused, and callers cut them at 80 characters, often mid-quote."""
    written = line(
        "bot.telegram.sender",
        "edit skipped",
        reason=f'Bad Request: Unsupported start tag "{NAME}" at byte',
        cut=f'Bad Request: query "{NAME} and more text that was cu',
        count=3,
    )
    assert written["reason"] == 'Bad Request: Unsupported start tag "…" at byte'
    assert written["cut"] == 'Bad Request: query "…"'
    assert written["count"] == 3


def test_an_exception_is_its_type_and_traceback_never_its_message() -> None:
    try:
        raise ValueError(f"could not parse {NAME}")
    except ValueError as exc:
        written = line("bot.app", "update failed", exc=exc)
    assert written["error"] == "ValueError"
    assert "test_logs.py" in written["traceback"]


def test_an_exception_logged_as_the_message_is_named_not_quoted() -> None:
    """logger.error(exc) puts the exception itself where the template goes."""
    assert line("somelib", ValueError(NAME))["event"] == "ValueError"


def test_a_hidden_secret_is_blanked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot token is in every Bot API URL; a library logging a URL must not write it."""
    monkeypatch.setattr(logs, "_hidden", set())
    logs.hide("123456:SECRET-token-value")
    written = line("bot.app", "call", url="https://api.telegram.org/bot123456:SECRET-token-value/getMe")
    assert written["url"] == "https://api.telegram.org/bot[hidden]/getMe"


def test_configured_root_writes_json_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """configure() puts one JSON handler on the root logger, whatever logged before."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logs.configure("INFO")
    logging.getLogger("aiogram.dispatcher").info("Run polling for bot @%s id=%d - %r", "puente_bot", 1, NAME)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(err)["event"] == "Run polling for bot @%s id=%d - %r"
    assert NAME not in err
