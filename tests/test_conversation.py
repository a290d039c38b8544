"""The conversation service as a person meets it: consent, languages, typing, stale buttons, deletion."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from bot.app import Core
from bot.config import Settings
from bot.conversation import Conversation, Person
from bot.intents import (
    Answer,
    AskDelete,
    AskLanguage,
    ChooseLanguage,
    ConfirmDelete,
    Consent,
    GoBack,
    Media,
    Start,
    Typed,
)
from bot.outgoing import Reply
from bot.storage import MemoryStore

ANA = Person(user_id=501, chat_id=501)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def conversation(core: Core, store: MemoryStore, frozen_now: dt.datetime) -> Conversation:
    return Conversation(core.programs, store, core.translator, core.vocabulary, clock=lambda: frozen_now)


def labels(reply: Reply) -> list[str]:
    return [b.label for m in reply.messages for row in m.buttons for b in row]


def last_text(reply: Reply) -> str:
    return reply.messages[-1].text


async def consent(conversation: Conversation, lang: str = "es") -> Reply:
    await conversation.handle(ANA, Start("es-MX"))
    await conversation.handle(ANA, ChooseLanguage(lang))
    return await conversation.handle(ANA, Consent(lang, accepted=True))


async def test_first_contact_offers_every_language_hint_first(conversation: Conversation) -> None:
    """/start shows all three languages in their own words; Telegram's language only decides the order."""
    reply = await conversation.handle(ANA, Start("fr"))
    assert sorted(labels(reply)) == ["English", "Español", "Kreyòl ayisyen"]
    reply = await conversation.handle(ANA, Start("en-US"))
    assert labels(reply)[0] == "English"


async def test_nothing_stored_before_consent(conversation: Conversation, store: MemoryStore) -> None:
    """Picking a language and declining the notice stores nothing about the person."""
    await conversation.handle(ANA, Start())
    notice = await conversation.handle(ANA, ChooseLanguage("ht"))
    assert labels(notice) == ["✅ Mwen dakò", "Pa kounye a"]
    declined = await conversation.handle(ANA, Consent("ht", accepted=False), update_id=3)
    assert "/start" in last_text(declined)
    assert await store.load(ANA.user_id) is None


async def test_consent_starts_the_questionnaire(conversation: Conversation, store: MemoryStore) -> None:
    """Accepting stores the person with their language and asks the first question with buttons."""
    reply = await consent(conversation, "en")
    assert "What is your nationality?" in last_text(reply)
    assert "Venezuelan" in labels(reply)
    stored = await store.load(ANA.user_id)
    assert stored is not None
    assert stored.language == "en"
    assert stored.session.node == "nationality"


async def test_typed_answers_work_like_buttons(conversation: Conversation, store: MemoryStore) -> None:
    """ "1" picks the first option; "sí" answers a yes/no question; gibberish re-asks with the buttons."""
    await consent(conversation, "es")
    await conversation.handle(ANA, Typed("1"))
    await conversation.handle(ANA, Typed("Panamá"))
    reply = await conversation.handle(ANA, Typed("sí"))
    assert "¿Cuándo fue la última vez que entraste a México o a Panamá de esa forma" in last_text(reply)
    reply = await conversation.handle(ANA, Typed("quizás mañana"))
    assert "no entendí" in last_text(reply)
    assert len(labels(reply)) >= 3
    stored = await store.load(ANA.user_id)
    assert stored is not None
    assert dict(stored.session.answers) == {"nationality": "venezuelan", "location": "panama", "mx_pa_irregular": "yes"}


async def test_language_switch_keeps_answers(conversation: Conversation, store: MemoryStore) -> None:
    """/language mid-questionnaire changes the language and re-asks the same question, answers kept."""
    await consent(conversation, "es")
    await conversation.handle(ANA, Answer("nationality", "venezuelan"))
    picker = await conversation.handle(ANA, AskLanguage())
    assert "Kreyòl ayisyen" in labels(picker)
    reply = await conversation.handle(ANA, ChooseLanguage("ht"))
    assert last_text(reply).endswith("Ki kote w ye kounye a?")
    assert "Meksik" in labels(reply)
    stored = await store.load(ANA.user_id)
    assert stored is not None
    assert stored.language == "ht"
    assert dict(stored.session.answers) == {"nationality": "venezuelan"}


async def test_old_button_is_handled_gracefully(conversation: Conversation, store: MemoryStore) -> None:
    """A tap on an earlier question's button changes nothing and shows where the person is."""
    await consent(conversation, "en")
    await conversation.handle(ANA, Answer("nationality", "venezuelan"))
    reply = await conversation.handle(ANA, Answer("nationality", "other"))
    assert reply.toast
    assert "earlier question" in reply.toast
    assert "Where are you now?" in last_text(reply)
    stored = await store.load(ANA.user_id)
    assert stored is not None
    assert dict(stored.session.answers) == {"nationality": "venezuelan"}


async def test_sticker_gets_a_polite_reask(conversation: Conversation) -> None:
    """A sticker, photo or voice note gets a kind re-ask with the buttons."""
    await consent(conversation, "es")
    reply = await conversation.handle(ANA, Media())
    assert "solo puedo leer" in last_text(reply).lower()
    assert "Venezolano o venezolana" in labels(reply)


async def test_answer_edit_shows_what_was_chosen(conversation: Conversation) -> None:
    """After a tap, the question's message is edited to show the chosen answer."""
    await consent(conversation, "en")
    reply = await conversation.handle(ANA, Answer("nationality", "venezuelan"))
    assert reply.edit_source is not None
    assert "Venezuelan" in reply.edit_source


async def test_delete_after_confirmation(conversation: Conversation, store: MemoryStore) -> None:
    """/delete asks once, then erases everything and says so in the person's language."""
    await consent(conversation, "ht")
    await conversation.handle(ANA, Answer("nationality", "venezuelan"))
    confirm = await conversation.handle(ANA, AskDelete())
    assert len(labels(confirm)) == 2
    assert await store.load(ANA.user_id) is not None
    kept = await conversation.handle(ANA, ConfirmDelete(confirmed=False))
    assert await store.load(ANA.user_id) is not None
    assert kept.messages
    done = await conversation.handle(ANA, ConfirmDelete(confirmed=True))
    assert await store.load(ANA.user_id) is None
    assert "efase" in last_text(done)


async def test_duplicate_update_is_processed_once(conversation: Conversation, store: MemoryStore) -> None:
    """The same update delivered twice advances once; the second time the person sees where they are again (its
    first reply may never have gone out), and nothing more."""
    await consent(conversation, "en")
    first = await conversation.handle(ANA, Answer("nationality", "venezuelan"), update_id=77)
    again = await conversation.handle(ANA, Answer("nationality", "venezuelan"), update_id=77)
    assert first.messages
    assert [m.text for m in again.messages] == [first.messages[-1].text]
    assert again.edit_source is None
    stored = await store.load(ANA.user_id)
    assert stored is not None
    assert stored.session.history == ("nationality",)


async def test_back_from_the_result(conversation: Conversation) -> None:
    """/back after the result reopens the last question."""
    await consent(conversation, "en")
    result = await conversation.handle(ANA, Answer("nationality", "h2b_country"))
    assert any("H-2B" in m.text for m in result.messages)
    reply = await conversation.handle(ANA, GoBack())
    assert "What is your nationality?" in last_text(reply)


async def test_every_result_states_the_rules_date(conversation: Conversation) -> None:
    """Each result says which rules it applied: "Rules as of December 15, 2022"."""
    await consent(conversation, "en")
    result = await conversation.handle(ANA, Answer("nationality", "other"))
    assert any("Rules as of December 15, 2022." in m.text for m in result.messages)


def test_settings_default_to_sqlite_long_polling() -> None:
    """With nothing configured the bot uses the embedded SQLite file and Telegram's public API."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite+aiosqlite:///data/")
    assert settings.telegram_api_url == "https://api.telegram.org"


async def test_session_from_an_edited_questionnaire_is_carried_over(
    conversation: Conversation, store: MemoryStore
) -> None:
    """A stored session naming a question the questionnaire no longer has goes on from what still counts, told so."""
    await consent(conversation, "en")
    stored = await store.load(ANA.user_id)
    assert stored is not None
    gone = replace(stored, session=replace(stored.session, node="a_question_removed_since"))
    await store.save(gone, previous=stored, update_id=None, now=dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
    reply = await conversation.handle(ANA, Typed("1"))
    assert reply.messages[0].text.startswith("ℹ️ The rules have changed.")
    assert last_text(reply).endswith("What is your nationality?")
    carried = await store.load(ANA.user_id)
    assert carried is not None
    assert carried.session.node == "nationality"
