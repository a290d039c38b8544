"""`python -m bot orgs import|export FILE`, `python -m bot referrals export FILE` and `python -m bot stats export
FILE`: the directory, the referrals and the anonymous figures as files.

Files are read and checked before the database is opened: a file with any error imports nothing. Exports are
readable by this user only (0600), whatever the umask.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.admin import directory_problem, referrals_csv
from bot.app import load_core, utc_now
from bot.config import Settings
from bot.i18n import Translator
from bot.insights import Insights, figures_csv
from bot.programs import Programs
from bot.storage import open_store
from bot.storage.referrals import ImportReport, Referral, Referrals
from bot.texts import T
from flows.directory import DirectoryError, Format, Organisation, dump_directory, parse_directory


def _format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise SystemExit(f"{path}: use a .yaml, .yml or .csv file")


def import_file(settings: Settings, path: Path) -> int:
    try:
        orgs = parse_directory(path.read_text(encoding="utf-8"), _format(path))
    except DirectoryError as exc:
        # In the deployment's language: the NGO staff who keep the directory read it.
        tr, lang = Translator.load(), settings.default_language
        said = tr.text(lang, T.DIR_NOTHING_IMPORTED, problem=directory_problem(tr, lang, exc))
        print(f"{path}: {said}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
        return 1
    report = asyncio.run(_import(settings, orgs))
    print(f"imported {path}: {report.added} added, {report.updated} updated, {report.deactivated} deactivated")
    return 0


def export_file(settings: Settings, path: Path) -> int:
    orgs = asyncio.run(_organisations(settings))
    write_private(path, dump_directory(orgs, _format(path)))
    print(f"exported {len(orgs)} organisations to {path}")
    return 0


def export_referrals(settings: Settings, path: Path) -> int:
    found = asyncio.run(_referrals(settings))
    write_private(path, referrals_csv(found))
    print(f"exported {len(found)} referrals to {path}")
    return 0


def export_stats(settings: Settings, path: Path, period: str, program: str) -> int:
    """The figures of /stats_csv (no ids, small counts as "<5"), for a spreadsheet."""
    programs = load_core(settings).programs
    if program and programs.get(program) is None:
        print(f"unknown program {program!r}; shipped: {', '.join(p.id for p in programs.all())}", file=sys.stderr)
        return 1
    text = asyncio.run(_stats(settings, programs, period, program))
    write_private(path, text)
    print(f"exported the {period} figures to {path}")
    return 0


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` as UTF-8, mode 0600 from before the first byte, an existing file included."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
        handle.write(text)


async def _import(settings: Settings, orgs: tuple[Organisation, ...]) -> ImportReport:
    store = await open_store(settings.database_url)
    try:
        return await Referrals(store).import_directory(orgs, utc_now())
    finally:
        await store.close()


async def _organisations(settings: Settings) -> list[Organisation]:
    store = await open_store(settings.database_url)
    try:
        return await Referrals(store).organisations()
    finally:
        await store.close()


async def _referrals(settings: Settings) -> list[Referral]:
    store = await open_store(settings.database_url)
    try:
        return await Referrals(store).listing()
    finally:
        await store.close()


async def _stats(settings: Settings, programs: Programs, period: str, program: str) -> str:
    store = await open_store(settings.database_url)
    try:
        return figures_csv(await Insights(store.engine, utc_now, programs).figures(period, program))
    finally:
        await store.close()
