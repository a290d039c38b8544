"""`python -m bot orgs import|export FILE` and `python -m bot referrals export FILE`: the directory as files."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.admin import referrals_csv
from bot.app import utc_now
from bot.config import Settings
from bot.storage import open_store
from bot.storage.referrals import Referrals
from flows.directory import DirectoryError, Format, dump_directory, parse_directory


def _format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise SystemExit(f"{path}: use a .yaml, .yml or .csv file")


async def import_directory(settings: Settings, path: Path) -> int:
    """Validate the whole file first; only a file without errors touches the database, in one transaction."""
    try:
        orgs = parse_directory(path.read_text(encoding="utf-8"), _format(path))
    except DirectoryError as exc:
        print(f"{path}: {exc}. Nothing was imported.", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
        return 1
    store = await open_store(settings.database_url)
    try:
        report = await Referrals(store).import_directory(orgs, utc_now())
    finally:
        await store.close()
    print(f"imported {path}: {report.added} added, {report.updated} updated, {report.deactivated} deactivated")
    return 0


async def export_directory(settings: Settings, path: Path) -> int:
    store = await open_store(settings.database_url)
    try:
        orgs = await Referrals(store).organisations()
    finally:
        await store.close()
    path.write_text(dump_directory(orgs, _format(path)), encoding="utf-8")
    print(f"exported {len(orgs)} organisations to {path}")
    return 0


async def export_referrals(settings: Settings, path: Path) -> int:
    store = await open_store(settings.database_url)
    try:
        found = await Referrals(store).listing()
    finally:
        await store.close()
    path.write_text(referrals_csv(found), encoding="utf-8")
    print(f"exported {len(found)} referrals to {path}")
    return 0
