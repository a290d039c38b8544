"""Scripted people for the insights page: each picks Creole, accepts the notice and taps the first option of every
question until their result (or declines the notice), through the real conversation service on a real SqlStore."""

from __future__ import annotations

from bot.app import Core, conversation_for
from bot.config import Settings
from bot.conversation import Person
from bot.intents import ChooseLanguage, Consent, Intent, Start
from bot.storage import SqlStore


async def seed_people(core: Core, store: SqlStore, count: int, declining: int = 0) -> None:
    """`count` people to a result, and `declining` more who decline the privacy notice."""
    conversation = conversation_for(core, store, Settings(_env_file=None))
    for user_id in range(2001, 2001 + declining):
        person = Person(user_id, user_id)
        await conversation.handle(person, Start())
        await conversation.handle(person, ChooseLanguage("ht"))
        await conversation.handle(person, Consent("ht", False))
    for user_id in range(1001, 1001 + count):
        person = Person(user_id, user_id)
        await conversation.handle(person, Start())
        await conversation.handle(person, ChooseLanguage("ht"))
        reply = await conversation.handle(person, Consent("ht", True))
        for _ in range(40):
            participant = await store.load(user_id)
            if participant is not None and participant.session.finished:
                break
            offered = [m for m in reply.messages if m.buttons]
            intent: Intent = offered[-1].buttons[0][0].intent
            reply = await conversation.handle(person, intent)
        else:
            raise AssertionError("a scripted person never reached a result")
