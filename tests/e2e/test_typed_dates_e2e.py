"""A person types the date instead of tapping, in each language, through the real bot and the fake Bot API."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.app import Core
from tests.e2e.conftest import answer, begin
from tests.fakebotapi import FakeBotAPI, FakeUser

MEXICO_CUTOFF = dt.date(2022, 10, 12)
IRREGULAR_CUTOFF = dt.date(2022, 10, 19)

#: Per language: the arrival in Mexico, one day before its cutoff, and the last irregular entry, one day after its.
TYPED = {
    "es": ("11 de octubre de 2022", "20/10/2022"),
    "ht": ("11 oktòb 2022", "20/10/2022"),
    "en": ("October 11, 2022", "10/20/2022"),
}
#: A day that does not exist, as each language would write it.
NO_SUCH_DAY = {"es": "31 de febrero de 2022", "ht": "31 fevriye 2022", "en": "February 31, 2022"}


async def to_mexico_entry(user: FakeUser, lang: str) -> None:
    await begin(user, lang)
    await answer(user, "nationality", "venezuelan")
    await answer(user, "location", "mexico")


async def typed(user: FakeUser, text: str) -> str:
    """Type `text`; what the bot sent back, in one string."""
    seen = len(user.messages)
    await user.send(text)
    await user.wait_idle(quiet=0.15)
    return "\n".join(m.text for m in user.messages[seen:])


def buttons_of(user: FakeUser) -> set[str]:
    return {b.data for row in user.last_message.buttons for b in row}


@pytest.mark.parametrize("lang", ["es", "ht", "en"])
async def test_a_typed_date_is_recorded_as_the_option_that_holds_it(bot: FakeBotAPI, core: Core, lang: str) -> None:
    """The day before the Mexico cutoff is "before"; the day after the irregular-entry cutoff is "after"."""
    tr = core.translator
    user = bot.user(language_code="es" if lang == "es" else "fr")
    await to_mexico_entry(user, lang)
    arrived, crossed = TYPED[lang]
    assert tr.text(lang, "q.mx_pa_irregular") in await typed(user, arrived)
    await answer(user, "mx_pa_irregular", "yes")
    assert tr.text(lang, "q.mx_pa_irregular_when") in user.last_message.text
    assert tr.text(lang, "q.us_irregular") in await typed(user, crossed)
    mydata = await typed(user, "/mydata")
    before = tr.text(lang, "opt.date.before", date=MEXICO_CUTOFF)
    after = tr.text(lang, "opt.date.after", date=IRREGULAR_CUTOFF)
    assert f"{tr.text(lang, 'q.mexico_entry')} {before}" in mydata
    assert f"{tr.text(lang, 'q.mx_pa_irregular_when')} {after}" in mydata
    assert all(call.ok for call in bot.calls), [c.summary() for c in bot.calls if not c.ok]


@pytest.mark.parametrize("lang", ["es", "ht", "en"])
async def test_a_date_that_is_no_day_is_asked_again_with_the_buttons(bot: FakeBotAPI, core: Core, lang: str) -> None:
    """ "31 February" gets a clear re-ask: what to write, the same question and its buttons; nothing is recorded."""
    tr = core.translator
    user = bot.user(language_code="es" if lang == "es" else "fr")
    await to_mexico_entry(user, lang)
    reply = await typed(user, NO_SUCH_DAY[lang])
    assert reply.startswith(tr.text(lang, "reply.date_unreadable"))
    assert tr.text(lang, "q.mexico_entry") in reply
    assert {"a:mexico_entry:before", "a:mexico_entry:on_or_after", "a:mexico_entry:dont_know"} <= buttons_of(user)
    mydata = await typed(user, "/mydata")
    assert tr.text(lang, "q.mexico_entry") not in mydata


async def test_a_future_or_ambiguous_date_is_asked_again(bot: FakeBotAPI, core: Core) -> None:
    """In English "11/10/2022" is November 10 or 11 October, on both sides of the cutoff: asked again, as is 2099."""
    tr = core.translator
    user = bot.user(language_code="en")
    await to_mexico_entry(user, "en")
    assert (await typed(user, "11/10/2022")).startswith(tr.text("en", "reply.date_ambiguous"))
    assert "a:mexico_entry:before" in buttons_of(user)
    assert (await typed(user, "October 5, 2099")).startswith(tr.text("en", "reply.date_future"))
    assert "a:mexico_entry:before" in buttons_of(user)
    assert tr.text("en", "q.mx_pa_irregular") in await typed(user, "October 11, 2022")
