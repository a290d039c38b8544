"""Secrets and supply chain: the bot token comes only from the environment or .env, Settings never shows it, a normal
start never logs it; .env is ignored by git; every dependency is pinned in the lock files the install uses."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot import logs
from bot.app import Core, serve
from bot.config import Settings
from tests.e2e.conftest import begin, settings_for
from tests.fakebotapi import FakeBotAPI

ROOT = Path(__file__).resolve().parents[1]
#: A token only this test uses, so finding its secret half anywhere is a leak, not a coincidence.
TOKEN = "987654321:AAH-secret_Only-This-Test-Knows-42"
SECRET = TOKEN.split(":", 1)[1]
PASSWORD = "db-Password-nobody-sees"


def test_settings_never_show_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read from .env or from the environment, the token and the hashing secret are usable but never shown by
    repr(), str() or a dump of the settings; a password in DATABASE_URL is kept out of repr() and str()."""
    for name in ("BOT_TOKEN", "LOG_ID_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"BOT_TOKEN={TOKEN}\nLOG_ID_SECRET=hmac-{SECRET}\n"
        f"DATABASE_URL=postgresql+asyncpg://puente:{PASSWORD}@127.0.0.1/puente\n"
    )
    from_file = Settings(_env_file=env_file)  # type: ignore[call-arg]
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("LOG_ID_SECRET", f"hmac-{SECRET}")
    from_environment = Settings(_env_file=None)  # type: ignore[call-arg]
    for settings in (from_file, from_environment):
        assert settings.bot_token is not None
        assert settings.bot_token.get_secret_value() == TOKEN
        for shown in (repr(settings), str(settings), f"{settings}"):
            assert SECRET not in shown
            assert PASSWORD not in shown
        for dumped in (settings.model_dump_json(), str(settings.model_dump())):
            assert SECRET not in dumped
    assert PASSWORD in from_file.database_url  # hidden from display only


def test_env_file_is_ignored_by_git() -> None:
    """.env holds the token: git must never pick it up (and .env.example, which has no value, is the one to copy)."""
    ignored = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert ".env" in ignored
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^BOT_TOKEN=$", example, re.MULTILINE)


def _pins(lock: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in lock.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = line.split(";", 1)[0].strip()
        name, sep, version = requirement.partition("==")
        assert sep, f"{lock.name}: not pinned: {raw!r}"
        assert not any(c in version for c in "<>=!~*,"), f"{lock.name}: not one version: {raw!r}"
        pins[name.strip().lower().replace("_", "-")] = version
    return pins


def test_dependencies_are_pinned_in_lock_files() -> None:
    """Every line of both lock files pins one exact version, every direct dependency is in them, and the Makefile
    installs from them (the audit reads the same files)."""
    runtime, dev = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-dev.lock")
    pyproject = (ROOT / "pyproject.toml").read_text()
    direct = re.findall(r'^\s*"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*[<>=~!]', pyproject, re.MULTILINE)
    assert direct
    for name in direct:
        assert name.lower().replace("_", "-") in dev, f"{name} is not pinned in requirements-dev.lock"
    assert runtime.items() <= dev.items(), "the dev lock must pin the runtime packages at the same versions"
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -r requirements.lock" in makefile
    assert "pip install --quiet -r requirements-dev.lock" in makefile


def test_audit_runs_outside_the_normal_checks() -> None:
    """`make audit` runs a pinned pip-audit against the lock files, is not part of `make check`, and the scheduled
    workflow that runs it parses, pins its actions to commits and uses Python 3.11."""
    makefile = (ROOT / "Makefile").read_text()
    audit = re.search(r"^audit:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert audit is not None
    assert "pip-audit" in audit.group(1)
    assert "--requirement requirements.lock" in audit.group(1)
    assert re.search(r"^PIP_AUDIT_VERSION \?= \d+\.\d+\.\d+$", makefile, re.MULTILINE)
    check = re.search(r"^check:(.*)$", makefile, re.MULTILINE)
    assert check is not None
    assert "audit" not in check.group(1)
    assert "pip-audit" not in (ROOT / "pyproject.toml").read_text()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "audit.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"schedule", "push"} <= triggers.keys()
    steps = workflow["jobs"]["pip-audit"]["steps"]
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), (
                f"not pinned to a commit: {step['uses']}"
            )
    assert any(step.get("with", {}).get("python-version") == "3.11" for step in steps)
    assert any("make audit" in step.get("run", "") for step in steps)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line the bot's process writes, formatted as `python -m bot` formats them, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(lambda record: not record.name.startswith("tests."))  # the fake server is not the bot
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_token_is_never_logged(
    core: Core, tmp_path: Path, captured_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    """A normal start, a person answering, a send Telegram fails once with a 500 (retried, logged), a stop: the
    token appears in no log line, and nothing is printed."""
    async with FakeBotAPI(token=TOKEN) as server:
        settings = settings_for(server, tmp_path / "puente.db")
        assert settings.bot_token is not None
        assert settings.bot_token.get_secret_value() == TOKEN
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
        user = server.user(language_code="en")
        await begin(user, "en")
        server.fail_next("sendMessage", status=500, chat_id=user.id)
        await user.tap(data="a:nationality:venezuelan")
        await user.wait_for(lambda m: any(b.data.startswith("a:location:") for row in m.buttons for b in row))
        stop.set()
        assert await asyncio.wait_for(task, timeout=10) == 0
    written = captured_logs.getvalue()
    assert '"bot starting"' in written  # the capture saw the bot's own lines
    assert '"level": "warning"' in written  # and the retried send
    printed = capsys.readouterr()
    for output in (written, printed.out, printed.err):
        assert SECRET not in output
