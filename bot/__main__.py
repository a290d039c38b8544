"""Command line: `python -m bot` runs the Telegram bot; `chat` runs the questionnaire in a terminal; `web` serves
the staff console; `check` validates the data files and catalogs; `orgs`, `referrals` and `stats` import and export
files."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bot import directory_cli
from bot.app import conversation_for, load_core, run
from bot.config import Settings
from bot.i18n import LANGUAGES
from bot.insights import PERIODS
from bot.storage import MemoryStore
from bot.terminal import TerminalChat


def main(argv: list[str] | None = None) -> int:
    # Whatever the process creates (the database folder and files, exports, anything a library writes) is for
    # this user only, whatever umask it was started with.
    os.umask(0o077)
    parser = argparse.ArgumentParser(prog="python -m bot", description="Puente, the intake bot.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the Telegram bot with long polling (the default)")
    serve = commands.add_parser("serve", help="run the Telegram bot: long polling, or --webhook")
    serve.add_argument("--webhook", action="store_true", help="serve Telegram's webhook (WEBHOOK_URL and more)")
    chat = commands.add_parser("chat", help="answer the questionnaire in this terminal")
    chat.add_argument("--lang", choices=LANGUAGES, help="skip the language picker")
    web = commands.add_parser("web", help="serve the web console for staff (preview, insights, texts)")
    web.add_argument("--listen", help="host:port (default: WEB_LISTEN, else 127.0.0.1:8081)")
    commands.add_parser("check", help="validate the program data and the catalogs, then exit")
    orgs = commands.add_parser("orgs", help="import or export the organisation directory (YAML or CSV)")
    orgs.add_argument("action", choices=["import", "export"])
    orgs.add_argument("file", type=Path)
    referrals = commands.add_parser("referrals", help="export the referrals as CSV")
    referrals.add_argument("action", choices=["export"])
    referrals.add_argument("file", type=Path)
    stats = commands.add_parser("stats", help="export the anonymous figures as CSV (no ids, small counts as <5)")
    stats.add_argument("action", choices=["export"])
    stats.add_argument("file", type=Path)
    stats.add_argument("--period", choices=list(PERIODS), default="all", help="the days counted (default: all)")
    stats.add_argument("--program", default="", help="one program's figures (default: every program)")
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "check":
        try:
            core = load_core(settings)
        except Exception as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            return 1
        shipped = ", ".join(p.id for p in core.programs.all())
        print(f"ok: programs {shipped} (active: {core.program.id}), languages {', '.join(core.translator.languages)}")
        return 0
    if args.command == "orgs":
        action = directory_cli.import_file if args.action == "import" else directory_cli.export_file
        return action(settings, args.file)
    if args.command == "referrals":
        return directory_cli.export_referrals(settings, args.file)
    if args.command == "stats":
        return directory_cli.export_stats(settings, args.file, args.period, args.program)
    if args.command == "web":
        from bot.web.standalone import run_console

        return asyncio.run(run_console(settings, args.listen))
    if args.command == "chat":
        core = load_core(settings)
        conversation = conversation_for(core, MemoryStore(), settings)
        return asyncio.run(TerminalChat(conversation, sys.stdout).run(sys.stdin, args.lang))
    try:
        with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
            return runner.run(run(settings, webhook=args.command == "serve" and args.webhook))
    except KeyboardInterrupt:
        return 0


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for the bot unless EVENT_LOOP=asyncio or it is not installed; None is asyncio's own."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
