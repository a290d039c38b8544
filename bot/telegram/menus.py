"""The command menu ("/" in the app) in the language each person picked, not the one their app reports.

Telegram picks a menu by the app's `language_code`, and no Telegram app speaks Haitian Creole: the Creole menu set
for "ht" is never shown to anyone. So a person's own chat gets the menu in their language the moment they pick it
(scope BotCommandScopeChat, which comes before any language-wide menu), and loses it when they erase their data.
The menu set is recorded with the person ("ht:3f9a0c1d", language and version of the commands), so a start puts
back every menu that a failed call left unset, or that a release with other commands or words left stale.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat

from bot.i18n import Translator
from bot.logs import hashed
from bot.texts import COMMANDS

log = logging.getLogger(__name__)


class MenuRecords(Protocol):
    async def menu_shown(self, user_id: int, menu: str) -> None:
        """Record that the person's chat shows `menu` (nothing for someone not stored)."""

    async def stale_menus(self, wanted: Mapping[str, str]) -> list[tuple[int, int, str]]:
        """(user id, chat id, language) of everyone whose chat does not show `wanted[language]`."""


class CommandMenus:
    def __init__(self, bot: Bot, translator: Translator, records: MenuRecords, default_language: str) -> None:
        self.bot = bot
        self.tr = translator
        self.records = records
        self.default_language = default_language
        self._commands = {lang: self._build(lang) for lang in translator.languages}
        #: What a chat showing the current menu in each language has recorded: a new command or a reworded
        #: description is a new version, so a start after such a release refreshes every chat.
        self.versions = {lang: f"{lang}:{_version(commands)}" for lang, commands in self._commands.items()}

    def _build(self, language: str) -> list[BotCommand]:
        return [BotCommand(command=c, description=self.tr.text(language, f"cmd.{c}")) for c in COMMANDS]

    async def register_defaults(self) -> None:
        """The menu for every private chat without one of its own, per app language, and a default (the bot
        works without any of them, so a failure only warns)."""
        scope = BotCommandScopeAllPrivateChats()
        for lang in (None, *self.tr.languages):
            try:
                await self.bot.set_my_commands(
                    self._commands[lang or self.default_language], scope=scope, language_code=lang
                )
            except TelegramAPIError as exc:
                log.warning("command menu not set", extra={"language": lang or "default", "reason": str(exc)[:80]})

    async def show(self, chat_id: int, language: str) -> bool:
        """Give this private chat (a person's: its id is theirs) the menu in `language`. False if Telegram
        refused: the record stays as it was, so the next start tries again."""
        try:
            await self._set(chat_id, language)
        except TelegramAPIError as exc:
            log.warning("chat menu not set", extra={"chat": hashed(chat_id), "reason": str(exc)[:80]})
            return False
        return True

    async def _set(self, chat_id: int, language: str) -> None:
        await self.bot.set_my_commands(self._commands[language], scope=BotCommandScopeChat(chat_id=chat_id))
        await self.records.menu_shown(chat_id, self.versions[language])

    async def clear(self, chat_id: int) -> None:
        """The chat goes back to the menu every private chat has (after /delete: nothing of the person is kept)."""
        try:
            await self.bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=chat_id))
        except TelegramAPIError as exc:
            log.warning("chat menu not cleared", extra={"chat": hashed(chat_id), "reason": str(exc)[:80]})

    async def restore(self) -> int:
        """Set every stored person's menu that is missing or stale, one call at a time (sitting out any flood
        wait Telegram asks for). Returns how many were set."""
        done = 0
        for _user_id, chat_id, language in await self.records.stale_menus(self.versions):
            while True:
                try:
                    await self._set(chat_id, language)
                except TelegramRetryAfter as wait:
                    await asyncio.sleep(wait.retry_after)
                    continue
                except TelegramAPIError as exc:  # blocked the bot, chat gone: the next start tries again
                    log.warning("chat menu not restored", extra={"chat": hashed(chat_id), "reason": str(exc)[:80]})
                else:
                    done += 1
                break
        if done:
            log.info("chat menus restored", extra={"count": done})
        return done


def _version(commands: list[BotCommand]) -> str:
    listed = json.dumps([(c.command, c.description) for c in commands], ensure_ascii=False)
    return hashlib.sha256(listed.encode()).hexdigest()[:8]
