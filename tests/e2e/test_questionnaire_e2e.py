"""A scripted person on Telegram, through the real bot and a fake Bot API over loopback HTTP."""

from __future__ import annotations

import logging

import pytest
from babel.dates import format_date

from bot.app import Core
from tests.e2e.conftest import ELIGIBLE, answer, begin, with_answers
from tests.fakebotapi import FakeBotAPI

PATHS = {
    "likely_eligible": (ELIGIBLE, "outcome.likely_eligible"),
    "not_eligible": (with_answers(removal_order="yes", flight="no"), "outcome.not_eligible"),
    "needs_review": (with_answers(passport="dont_know"), "outcome.needs_review"),
    "h2b": ([("nationality", "h2b_country")], "route.h2b"),
    "inside_us": ([("nationality", "venezuelan"), ("location", "usa")], "route.inside_us"),
    "not_covered": ([("nationality", "other")], "route.not_covered"),
}


def first_line(core: Core, lang: str, key: str) -> str:
    return core.translator.text(lang, key).split("\n")[0]


@pytest.mark.parametrize("lang", ["es", "ht", "en"])
@pytest.mark.parametrize("path", list(PATHS))
async def test_every_outcome_in_every_language(bot: FakeBotAPI, core: Core, lang: str, path: str) -> None:
    """A person taps through to each outcome in each language and reads it, dated, in that language."""
    answers, outcome_key = PATHS[path]
    user = bot.user(language_code="es" if lang == "es" else "fr")
    await begin(user, lang)
    for question, option in answers:
        await answer(user, question, option)
    texts = [m.text for m in user.messages]
    assert any(first_line(core, lang, outcome_key) in t for t in texts), texts[-4:]
    rules_as_of = core.translator.text(lang, "result.rules_as_of", date=core.program.ruleset.as_of)
    assert any(rules_as_of in t for t in texts)
    if path == "likely_eligible":
        assert any(first_line(core, lang, "info.air_only") in t for t in texts)
        assert any(first_line(core, lang, "info.route_steps") in t for t in texts)
        assert any(first_line(core, lang, "info.safety") in t for t in texts)
    if path == "not_eligible":
        outcome = next(t for t in texts if first_line(core, lang, outcome_key) in t)
        date = core.translator.date(lang, core.program.ruleset.as_of)
        assert outcome.count("•") == 2
        assert date in outcome
    if lang == "ht":  # the rules' month in Creole ("desanm"), never CLDR's French ("décembre")
        as_of = core.program.ruleset.as_of
        assert core.translator.text("ht", f"date.month.{as_of.month}") in "".join(texts)
        assert format_date(as_of, "MMMM", locale="fr") not in "".join(texts)
    assert all(call.ok for call in bot.calls), [c.summary() for c in bot.calls if not c.ok]


async def test_answer_is_shown_on_the_tapped_message(bot: FakeBotAPI) -> None:
    """After a tap, the question's message shows the answer and loses its buttons, and the next question comes."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    question = user.last_message
    await answer(user, "nationality", "venezuelan")
    assert question.edited
    assert "Your answer: Venezuelan" in question.text
    assert not question.buttons
    assert "Where are you now?" in user.last_message.text


async def test_typing_instead_of_tapping(bot: FakeBotAPI) -> None:
    """Typed answers ("1", "sí", "no sé") work like taps; nonsense re-asks with the buttons."""
    user = bot.user(language_code="es")
    await begin(user, "es")
    for text in ("1", "panamá", "sí", "no sé"):
        await user.send(text)
        await user.wait_idle(quiet=0.15)
    assert "¿Alguna vez entraste a Estados Unidos" in user.last_message.text
    await user.send("quizás")
    await user.wait_idle(quiet=0.15)
    assert "no entendí" in user.last_message.text
    assert len(user.last_message.buttons) >= 3


async def test_stickers_photos_and_voice_get_a_polite_reask(bot: FakeBotAPI) -> None:
    """Media the bot cannot read gets a kind answer with the current question's buttons, nothing lost."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    await answer(user, "nationality", "venezuelan")
    for send in (user.send_sticker, user.send_photo, user.send_voice):
        await send()
        reply = await user.wait_for(lambda m: "only read text" in m.text)
        assert "Where are you now?" in reply.text
        assert reply.buttons


async def test_old_button_is_handled_gracefully(bot: FakeBotAPI) -> None:
    """Tapping a button on an earlier question's message changes nothing and shows the current question."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    first_question = user.last_message
    # The notice's edit goes beside the first question and may land after it: let it, so the failure set below
    # is the next question's edit and no other.
    await user.wait_idle(quiet=0.15)
    # Telegram refuses to edit old messages, so their buttons stay tappable; the bot carries on without the edit.
    bot.fail_next("editMessageText", status=400, description="Bad Request: message can't be edited")
    await answer(user, "nationality", "venezuelan")
    await user.tap(data="a:nationality:other", message=first_question)
    await user.wait_idle(quiet=0.15)
    assert "earlier question" in (user.callback_answers[-1].text or "")
    assert "Where are you now?" in user.last_message.text


async def test_language_switch_keeps_answers(bot: FakeBotAPI) -> None:
    """/language mid-questionnaire switches to Creole and the same question comes back, answers kept."""
    user = bot.user(language_code="es")
    await begin(user, "es")
    await answer(user, "nationality", "venezuelan")
    await user.send("/language")
    await user.wait_for(lambda m: any(b.data == "l:ht" for row in m.buttons for b in row))
    await user.tap(data="l:ht")
    await user.wait_idle(quiet=0.15)
    assert user.last_message.text.endswith("Ki kote w ye kounye a?")
    assert "Kesyon 2" in user.last_message.text


async def test_back_command_and_button(bot: FakeBotAPI) -> None:
    """/back and the Back button return to the previous question."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    await answer(user, "nationality", "venezuelan")
    await user.send("/back")
    await user.wait_idle(quiet=0.15)
    assert user.last_message.text.endswith("What is your nationality?")
    await answer(user, "nationality", "venezuelan")
    await user.tap(data="b")
    await user.wait_idle(quiet=0.15)
    assert user.last_message.text.endswith("What is your nationality?")


async def test_delete_erases_after_confirmation(bot: FakeBotAPI) -> None:
    """/delete asks once; after Yes the person starts over with the language picker."""
    user = bot.user(language_code="ht")
    await begin(user, "ht")
    await answer(user, "nationality", "venezuelan")
    await user.send("/delete")
    await user.wait_for(lambda m: any(b.data == "d:1" for row in m.buttons for b in row))
    await user.tap(data="d:1")
    await user.wait_idle(quiet=0.15)
    assert "efase" in user.last_message.text
    await user.send("/start")
    picker = await user.wait_for(lambda m: bool(m.buttons))
    assert next(b.data for row in picker.buttons for b in row).startswith("l:")


async def test_declining_consent_stores_nothing_and_says_so(bot: FakeBotAPI) -> None:
    """ "Not now" on the privacy notice leaves nothing stored: /start offers the languages again."""
    user = bot.user(language_code="en")
    await user.send("/start")
    await user.wait_for(lambda m: bool(m.buttons))
    await user.tap(data="l:en")
    await user.wait_for(lambda m: bool(m.buttons))
    await user.tap(data="c:en:0")
    declined = await user.wait_for(lambda m: "/start" in m.text)
    assert "saved nothing" in declined.text
    await user.send("hello")
    picker = await user.wait_for(lambda m: bool(m.buttons))
    assert {b.data for row in picker.buttons for b in row} == {"l:es", "l:ht", "l:en"}


async def test_commands_registered_per_language(bot: FakeBotAPI, core: Core) -> None:
    """The command menu is set in Spanish, Creole and English (and a default)."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    scope = {"type": "all_private_chats"}
    for lang in ("es", "ht", "en"):
        commands = bot.commands(scope, lang)
        assert [c["command"] for c in commands] == [
            "start", "back", "restart", "language", "organisations", "human", "help", "privacy", "mydata", "stop",
            "subscribe", "delete", "bot",
        ]  # fmt: skip
        assert commands[-1]["description"] == core.translator.text(lang, "cmd.bot")
    assert bot.commands(scope)


async def test_same_update_twice_is_processed_once(bot: FakeBotAPI) -> None:
    """An update Telegram delivers again (offset not confirmed) changes nothing; the person is shown the question
    they are at once more, in case the first reply never went out."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    update_id = await user.send("1")
    await user.wait_idle(quiet=0.15)
    sent_before = bot.stats.messages_sent
    bot.duplicate_update(update_id)
    await user.wait_idle(quiet=0.3)
    assert bot.stats.messages_sent == sent_before + 1
    assert user.last_message.text.endswith("Where are you now?")
    assert [m.text for m in user.messages[-2:]] == [user.last_message.text] * 2


async def test_two_quick_inputs_are_handled_in_order(bot: FakeBotAPI) -> None:
    """A tap and a typed answer sent back to back are applied in the order they were sent."""
    user = bot.user(language_code="en")
    await begin(user, "en")
    await user.tap(data="a:nationality:venezuelan")
    await user.send("3")  # meant for the next question: "Mexico", its third option
    await user.wait_idle(quiet=0.3)
    assert user.last_message.text.endswith("When did you arrive in Mexico?")


async def test_logs_carry_no_personal_data(bot: FakeBotAPI, caplog: pytest.LogCaptureFixture) -> None:
    """Names, typed text, answers and raw user ids never reach a log line, even at DEBUG."""
    caplog.set_level(logging.DEBUG)
    user = bot.user(first_name="Wilmarys", language_code="es")
    await begin(user, "es")
    await user.send("mi hermano se llama Yorbis")
    await user.wait_idle(quiet=0.15)
    await answer(user, "nationality", "venezuelan")
    await user.send("/language")
    await user.wait_idle(quiet=0.15)
    await user.send_sticker()
    await user.wait_idle(quiet=0.15)

    bot.fail_next("sendMessage", status=429, retry_after=1, chat_id=user.id)  # a warning with extras
    await answer(user, "location", "mexico")
    assert "Pregunta 3" in user.last_message.text

    assert caplog.records, "the bot logged nothing, so this test would prove nothing"
    forbidden = ["Wilmarys", "Yorbis", "hermano", str(user.id), "venezuelan", "mexico"]
    for record in caplog.records:
        line = f"{record.getMessage()} {vars(record)}"
        leaked = [word for word in forbidden if word in line]
        assert not leaked, (record.name, record.getMessage(), leaked)
