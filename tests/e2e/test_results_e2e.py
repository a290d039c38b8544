"""What a person reads at the end, in each language: a next step they can take now, their own words for what they
did not know, and no resent result for a stale tap (issue 13)."""

from __future__ import annotations

import re

import pytest

from bot.app import Core
from bot.outgoing import READABLE
from tests.conftest import FIGURES
from tests.e2e.conftest import ELIGIBLE, answer, begin, with_answers
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.fakebotapi.chat import ChatMessage

LANGUAGES = ["es", "ht", "en"]
#: The word a person looks for when they need help finding a supporter.
ORGANISATION = {"es": "organizaci", "ht": "òganizasyon", "en": "organisation"}


async def finish(user: FakeUser, lang: str, answers: list[tuple[str, str]]) -> list[ChatMessage]:
    """Answer every question; the messages of the result, from the verdict on."""
    await begin(user, lang)
    before = len(user.messages)
    for question, option in answers:
        await answer(user, question, option)
    await user.wait_idle(quiet=0.3)
    messages = user.messages[before:]
    last_question = max(i for i, m in enumerate(messages) if m.edited)  # each answered question shows its answer
    return messages[last_question + 1 :]


def data(message: ChatMessage) -> list[str]:
    return [b.data for row in message.buttons for b in row]


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_each_outcome_ends_with_a_step_to_take_now(bot: FakeBotAPI, core: Core, lang: str) -> None:
    """Not eligible, needs review, and likely eligible without a supporter each end with what to do next and a
    button for each choice, never only "start again"; no message is longer than a phone screen."""
    tr = core.translator
    cases = {
        "next.not_eligible": with_answers(removal_order="yes"),
        "next.needs_review": with_answers(passport="dont_know"),
        "next.find_supporter": with_answers(supporter="no"),
        "next.likely_eligible": ELIGIBLE,
    }
    for key, answers in cases.items():
        result = await finish(bot.user(language_code="fr"), lang, answers)
        last = result[-1]
        assert last.text == tr.text(lang, key)
        assert "n:restart" in data(last)
        assert "n:orgs" in data(last)
        assert all(len(m.text) <= READABLE for m in result), [len(m.text) for m in result]
        if key in ("next.needs_review", "next.find_supporter"):
            # The matching organisations, or that none has room now and how to ask a person.
            offer = result[-2].text
            assert ORGANISATION[lang] in offer.lower()
            assert offer.startswith(tr.text(lang, "orgs.intro")) or "/human" in offer


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_a_stale_tap_after_the_result_does_not_resend_it(bot: FakeBotAPI, core: Core, lang: str) -> None:
    """A button from an old question after the result gets one short message saying where the result is, with
    the next steps; "See my result again" brings it back whole."""
    user = bot.user(language_code="fr")
    result = await finish(user, lang, with_answers(removal_order="yes"))
    count = len(user.messages)
    # Telegram keeps an old keyboard on screen when the edit that removed it failed: the tap comes anyway.
    await user.tap(data="a:nationality:venezuelan", message=user.messages[count - len(result) - 1], forge=True)
    await user.wait_idle(quiet=0.3)
    assert len(user.messages) == count + 1
    above = user.messages[-1]
    assert above.text == core.translator.text(lang, "result.above")
    assert data(above)[0] == "n:result"
    await user.tap(data="n:result", message=above)
    await user.wait_idle(quiet=0.3)
    again = user.messages[count + 1 :]
    assert [m.text for m in again] == [m.text for m in result]


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_i_dont_know_is_never_stated_as_a_fact(bot: FakeBotAPI, core: Core, lang: str) -> None:
    """Someone who does not know about a removal order reads that they said they do not know and a person
    should check, never that the United States ordered them removed; a missing passport reads as needing one."""
    tr = core.translator
    result = await finish(bot.user(language_code="fr"), lang, with_answers(removal_order="dont_know"))
    verdict = result[0].text
    assert verdict.startswith(tr.text(lang, "outcome.needs_review"))
    assert f"• {tr.text(lang, 'unknown.removal')}" in verdict
    assert tr.text(lang, "reason.b2") not in verdict

    result = await finish(bot.user(language_code="fr"), lang, with_answers(passport="none"))
    assert f"• {tr.text(lang, 'reason.e4')}" in result[0].text
    assert tr.text(lang, "doubt.passport") not in result[0].text


#: A word has a letter or a digit in it; emoji, bullets and step numbers are not read as words.
WORD = re.compile(r"\S*[^\W_]\S*")
#: Words a minute at the slow end of adult silent reading: the average is about 238 in English (Brysbaert 2019),
#: 228 in English and 218 in Spanish in the IReST study (2012). The figure at 150 is printed for slower readers.
READER_WPM = 200
SLOW_READER_WPM = 150


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_eligible_result_reads_in_under_a_minute(
    bot: FakeBotAPI, core: Core, lang: str, request: pytest.FixtureRequest
) -> None:
    """Everything a likely-eligible person reads after their last answer takes less than a minute at the slow end
    of adult reading; the word count, the longest message and the time at a slower pace go in the run's figures."""
    result = await finish(bot.user(language_code="fr"), lang, ELIGIBLE)
    words = sum(len(WORD.findall(m.text)) for m in result)
    longest = max(len(m.text) for m in result)
    seconds = 60 * words / READER_WPM
    request.config.stash[FIGURES].append(
        f"eligible result {lang}: {len(result)} messages, {words} words, longest {longest} characters; "
        f"{seconds:.0f} s at {READER_WPM} words a minute, {60 * words / SLOW_READER_WPM:.0f} s at {SLOW_READER_WPM}"
    )
    assert seconds < 60, f"{words} words take {seconds:.0f} s at {READER_WPM} words a minute"
