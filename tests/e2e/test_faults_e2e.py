"""Telegram's limits and failures, and crashes of the bot itself: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import Core
from tests.e2e.conftest import ROOT, BotProcess, answer, begin, kill_9_mid_questionnaire
from tests.fakebotapi import FakeBotAPI


async def test_429_is_honoured_and_nothing_lost(bot: FakeBotAPI) -> None:
    """A 429 with retry_after on sendMessage is waited out and the message still arrives, once."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    bot.fail_next("sendMessage", status=429, retry_after=1, chat_id=user.id)
    await answer(user, "nationality", "venezuelan")
    assert user.last_message.text.endswith("Where are you now?")
    assert bot.stats.injected_failures == 1
    assert sum(m.text.endswith("Where are you now?") for m in user.messages) == 1


async def test_server_errors_are_retried(bot: FakeBotAPI) -> None:
    """Two 502s in a row on sendMessage are retried with backoff until the message goes through."""
    user = bot.user(language_code="es")
    await begin(user, "es")
    bot.fail_next("sendMessage", status=502, times=2, chat_id=user.id)
    await answer(user, "nationality", "venezuelan")
    assert user.last_message.text.endswith("¿Dónde estás ahora?")


async def test_blocked_bot_keeps_working_for_others(bot: FakeBotAPI) -> None:
    """A person who blocked the bot gets nothing (403) and the bot keeps serving everyone else."""
    gone, ana = bot.user(language_code="en"), bot.user(language_code="es")
    await begin(gone, "en")
    gone.block_bot()
    await gone.tap(data="a:nationality:venezuelan")
    await begin(ana, "es")
    await answer(ana, "nationality", "venezuelan")
    assert ana.last_message.text.endswith("¿Dónde estás ahora?")
    assert any(c.status == 403 for c in bot.calls)


async def test_startup_goes_on_when_commands_cannot_be_set(server: FakeBotAPI, core: Core, tmp_path: Path) -> None:
    """If setMyCommands fails, the bot still starts and answers."""
    from bot.app import serve
    from tests.e2e.conftest import settings_for

    server.fail_next("setMyCommands", status=400, description="Bad Request: BOT_COMMAND_INVALID", times=4)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings_for(server, tmp_path / "p.db"), core, handle_signals=False, stop=stop))
    user = server.user(language_code="en")
    await begin(user, "en")
    assert user.last_message.text.endswith("What is your nationality?")
    stop.set()
    await asyncio.wait_for(task, timeout=10)


@pytest.mark.slow
async def test_kill_9_mid_questionnaire_loses_nothing(server: FakeBotAPI, bot_process: BotProcess) -> None:
    """kill -9 of the bot process mid-questionnaire: after restart the person continues at the same question."""
    await kill_9_mid_questionnaire(server, bot_process)


@pytest.mark.slow
async def test_the_process_answers_on_uvloop(server: FakeBotAPI, bot_process: BotProcess) -> None:
    """`python -m bot` runs on uvloop (EVENT_LOOP's default), says so when it starts, and takes a person through
    the first questions on it."""
    bot_process.env["LOG_LEVEL"] = "INFO"
    await bot_process.started(server)
    user = server.user(language_code="en")
    await begin(user, "en")
    await answer(user, "nationality", "venezuelan")
    bot_process.stop()
    starting = [json.loads(line) for line in bot_process.log.read_text().splitlines() if '"bot starting"' in line]
    assert [line["loop"] for line in starting] == ["uvloop"]


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "TELEGRAM_API_URL", "DATABASE_URL"}}
    return {**base, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", **extra}


def test_no_token_explains_botfather(tmp_path: Path) -> None:
    """Without BOT_TOKEN the bot explains how to get one from @BotFather and exits non-zero."""
    done = run_cli(env=clean_env(tmp_path), timeout=60)
    assert done.returncode == 2
    assert "@BotFather" in done.stderr
    assert "BOT_TOKEN" in done.stderr


async def test_rejected_token_is_reported(server: FakeBotAPI, tmp_path: Path) -> None:
    """A token Telegram rejects (401) is reported as such, with a non-zero exit."""
    env = clean_env(tmp_path, BOT_TOKEN="999:not-the-right-token", TELEGRAM_API_URL=server.base_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 3
    assert "rejected" in stderr.decode()


def test_terminal_chat_replays_a_conversation_from_a_file(tmp_path: Path) -> None:
    """`python -m bot chat` answers piped lines like taps and reaches a result in Creole."""
    script = "\n".join(["1", "3"]) + "\n"  # accept the notice, then "Guatemala, El Salvador, Honduras, Haiti"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--lang", "ht"],
        cwd=ROOT,
        env=clean_env(tmp_path),
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "H-2B" in done.stdout
    assert "15 desanm 2022" in done.stdout
    # Each pick is echoed as the option chosen (never the notice's "rules as of" line).
    echoes = [line.strip() for line in done.stdout.splitlines() if line.startswith("  [")]
    assert echoes[1:3] == ["[✅ Mwen dakò]", "[Gwatemala, Salvadò, Ondiras oswa Ayiti]"], echoes


async def test_unexpected_failure_apologises_and_keeps_the_answer(bot: FakeBotAPI) -> None:
    """If delivering a reply fails for good (a 400), the person is told, and the saved answer still counts."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    bot.fail_next("sendMessage", status=400, description="Bad Request: chat is temporarily unavailable")
    await user.tap(data="a:nationality:venezuelan")
    apology = await user.wait_for(lambda m: "went wrong" in m.text)
    assert "answers are safe" in apology.text
    await user.send("/start")
    resumed = await user.wait_for(lambda m: bool(m.buttons))
    assert resumed.text.endswith("Where are you now?")


def test_directory_import_export_round_trip(tmp_path: Path) -> None:
    """`orgs import` loads the example directory, `orgs export` writes it back identically (CSV or YAML)."""
    env = clean_env(tmp_path)
    example = ROOT / "directory" / "example.yaml"
    done = run_cli("orgs", "import", str(example), env=env)
    assert done.returncode == 0, done.stderr
    assert "5 added" in done.stdout
    exported = tmp_path / "out.csv"
    assert run_cli("orgs", "export", str(exported), env=env).returncode == 0
    assert sorted(exported.read_text().splitlines()) == sorted(
        (ROOT / "directory" / "example.csv").read_text().splitlines()
    )


def test_directory_import_refuses_a_bad_file_whole(tmp_path: Path) -> None:
    """A file with one bad row imports nothing and names the row and the field, in the deployment's language."""
    env = clean_env(tmp_path, DEFAULT_LANGUAGE="es")
    good = (ROOT / "directory" / "example.csv").read_text().splitlines()
    broken = [*good[:2], good[2].replace("https://", "http://", 1), *good[3:]]  # spreadsheet row 3
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(broken) + "\n")
    done = run_cli("orgs", "import", str(bad), env=env)
    assert done.returncode == 1
    assert "fila 3, campo “website”: 'http://" in done.stderr
    assert "no es una dirección web" in done.stderr
    assert "No se importó nada." in done.stderr
    in_creole = run_cli("orgs", "import", str(bad), env={**env, "DEFAULT_LANGUAGE": "ht"})
    assert "liy 3, chan “website”" in in_creole.stderr
    assert "Anyen pa t enpòte." in in_creole.stderr
    exported = tmp_path / "after.yaml"
    run_cli("orgs", "export", str(exported), env=env)
    assert "organisations: []" in exported.read_text()
