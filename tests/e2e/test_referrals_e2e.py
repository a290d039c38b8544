"""Connecting people with sponsorship organisations, end to end through the fake Bot API.

Two fictional organisations with intake chats (groups on the fake server) and registered members; a third
without an intake chat (contact details only). People finish the questionnaire without a supporter.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Core, serve, utc_now
from bot.storage import open_store
from bot.storage.referrals import Referrals, Status
from flows.directory import Organisation
from tests import directory
from tests.e2e.conftest import answer, begin, settings_for, with_answers
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.fakebotapi.chat import ChatMessage
from tests.fakebotapi.group import FakeGroup, FakeMember

ADMIN_ID = 424242


@dataclass
class World:
    server: FakeBotAPI
    database: Path
    alpha: FakeGroup
    beta: FakeGroup
    alpha_staff: FakeMember
    beta_staff: FakeMember

    async def referral_status(self, referral_id: int) -> Status:
        store = await open_store(f"sqlite+aiosqlite:///{self.database}")
        try:
            referral = await Referrals(store).referral(referral_id)
        finally:
            await store.close()
        assert referral is not None
        return referral.status


def organisation(
    org_id: str, name: str, group: FakeGroup | None, members: tuple[int, ...], **extra: object
) -> Organisation:
    """One of the organisations here: an intake chat on the fake server, or none and a website instead."""
    fields: dict[str, object] = {
        "name": name,
        "offers": ("find_supporter", "legal_advice"),
        "languages": ("es", "en"),
        "nationalities": ("venezuelan", "family"),
        "intake_chat_id": group.id if group else None,
        "website": None if group else f"https://example.org/{org_id}",
        "members": members,
    }
    return directory.organisation(org_id, **{**fields, **extra})


async def start_world(server: FakeBotAPI, core: Core, tmp_path: Path, capacities: dict[str, int]) -> World:
    alpha, beta = server.group(title="Alpha intake"), server.group(title="Beta intake")
    alpha_staff = alpha.member(first_name="Marta", language_code="es")
    beta_staff = beta.member(first_name="John", language_code="en")
    database = tmp_path / "puente.db"
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    directory = [
        organisation("alpha", "Alfa Ejemplo (ficticia)", alpha, (alpha_staff.id,), weekly_capacity=capacities["alpha"]),
        organisation(
            "beta",
            "Beta Example (fictional)",
            beta,
            (beta_staff.id,),
            weekly_capacity=capacities["beta"],
            languages=("en", "es"),  # its intake chat reads English
        ),
        organisation("gamma", "Gamma Web Only (fictional)", None, (), verified=False),
    ]
    await Referrals(store).import_directory(directory, utc_now())
    await store.close()
    return World(server, database, alpha, beta, alpha_staff, beta_staff)


@pytest.fixture
def capacities() -> dict[str, int]:
    return {"alpha": 10, "beta": 10}


@pytest.fixture
async def world(server: FakeBotAPI, core: Core, tmp_path: Path, capacities: dict[str, int]) -> AsyncIterator[World]:
    built = await start_world(server, core, tmp_path, capacities)
    settings = settings_for(server, built.database).model_copy(update={"admin_ids": frozenset({ADMIN_ID})})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    yield built
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def finish_without_supporter(user: FakeUser, lang: str = "en") -> list[ChatMessage]:
    """The questionnaire, eligible but with no supporter yet: the result is followed by organisations."""
    await begin(user, lang)
    for question, option in with_answers(supporter="no"):
        await answer(user, question, option)
    return [m for m in user.messages if any(b.data and b.data.startswith("o:") for row in m.buttons for b in row)]


async def share_with(user: FakeUser, org_id: str) -> ChatMessage:
    """Ask an organisation, then tap Share on the screen that shows what would be shared."""
    offer = next(m for m in reversed(user.messages) if any(b.data == f"o:{org_id}" for r in m.buttons for b in r))
    await user.tap(data=f"o:{org_id}", message=offer)
    screen = await user.wait_for(lambda m: any(b.data == f"s:{org_id}:1" for r in m.buttons for b in r))
    await user.tap(data=f"s:{org_id}:1", message=screen)
    return screen


def referral_id(card: ChatMessage) -> int:
    data = next(b.data for row in card.buttons for b in row if b.data and b.data.startswith("r:"))
    return int(data.split(":")[1])


async def test_share_accept_and_the_person_is_told(world: World) -> None:
    """Questionnaire, organisations shown, Share, card in the intake chat, Accept, person told in their language."""
    user = world.server.user(first_name="Yorbis", username="yorbis_v", language_code="es")
    offers = await finish_without_supporter(user, "es")
    offered = {b.data for m in offers for row in m.buttons for b in row}
    assert offered == {"o:alpha", "o:beta"}  # gamma has no intake chat: contact details only, no button
    assert any("https://example.org/gamma" in m.text and "⚠️" in m.text for m in user.messages)  # unverified label
    assert all("gratis" in m.text for m in offers)

    screen = await share_with(user, "alpha")
    assert "@yorbis_v" in screen.text
    assert "Español" in screen.text
    assert "¿Cuál es tu nacionalidad?" in screen.text
    sent = await user.wait_for(
        lambda m: "Alfa Ejemplo" in m.text and any(b.data.startswith("w:") for r in m.buttons for b in r)
    )
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    assert card.protected  # protect_content: nobody can forward the person's details out of the intake chat
    assert "@yorbis_v" in card.text
    assert "Never ask the person for money" not in card.text  # the card speaks Spanish, the chat's language
    assert "gratis" in card.text
    assert "Venezolano o venezolana" in card.text
    assert world.beta.messages == []

    ref = referral_id(card)
    await world.alpha_staff.tap(data=f"r:{ref}:1")
    await world.alpha.wait_until(lambda: card.edited)
    assert "Marta" in card.text
    assert not card.buttons
    accepted = await user.wait_for(lambda m: m.text.startswith("✅") and "Alfa Ejemplo" in m.text)
    assert "Telegram" in accepted.text
    assert await world.referral_status(ref) is Status.ACCEPTED
    assert sent.message_id < accepted.message_id
    # Nothing left to withdraw: the "request sent" message keeps its words and loses its button.
    assert sent.edited
    assert not sent.buttons
    assert "Alfa Ejemplo" in sent.text


async def test_decline_offers_the_next_organisation(world: World) -> None:
    """After a Decline the person is told and offered the others, never the one that declined."""
    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "beta")
    sent = await user.wait_for(lambda m: any(b.data.startswith("w:") for r in m.buttons for b in r))
    card = await world.beta.wait_for(lambda m: bool(m.buttons))
    await world.beta_staff.tap(data=f"r:{referral_id(card)}:0")
    await world.beta.wait_until(lambda: card.edited)
    declined = await user.wait_for(lambda m: "cannot help you right now" in m.text)
    follow_up = await user.wait_for(lambda m: any(b.data == "o:alpha" for r in m.buttons for b in r))
    assert declined.message_id < follow_up.message_id
    await user.wait_idle(quiet=0.2)
    later = [m for m in user.messages if m.message_id > declined.message_id]
    assert not any(b.data == "o:beta" for m in later for r in m.buttons for b in r)
    assert "Declined by John" in card.text
    assert sent.edited
    assert not sent.buttons


async def test_dont_share_sends_nothing(world: World) -> None:
    """ "Don't share" leaves the intake chat empty and records nothing."""
    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    offer = next(m for m in user.messages if any(b.data == "o:alpha" for r in m.buttons for b in r))
    await user.tap(data="o:alpha", message=offer)
    screen = await user.wait_for(lambda m: any(b.data == "s:alpha:0" for r in m.buttons for b in r))
    await user.tap(data="s:alpha:0", message=screen)
    await user.wait_for(lambda m: "shared nothing" in m.text)
    await world.alpha.wait_idle(quiet=0.3)
    assert world.alpha.messages == []


async def test_withdrawal_clears_the_card_and_tells_the_organisation(world: World) -> None:
    """The person withdraws an open request: the card keeps one line and no buttons (their contact and answers
    leave the intake chat), and the intake chat is told."""
    user = world.server.user(username="yorbis_v", language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    sent = await user.wait_for(lambda m: any(b.data.startswith("w:") for r in m.buttons for b in r))
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    ref = referral_id(card)
    await user.tap(data=next(b.data for r in sent.buttons for b in r), message=sent)
    await user.wait_for(lambda m: "withdrew" in m.text)
    notice = await world.alpha.wait_for(lambda m: m is not card and f"#{ref}" in m.text)
    assert "retir" in notice.text.lower()  # the intake chat speaks Spanish
    assert card.text == f"↩️ Solicitud #{ref}: la persona la retiró. Sus datos se quitaron de este mensaje."
    assert not card.buttons
    await world.alpha_staff.tap(data=f"r:{ref}:1", message=card, forge=True)
    await world.alpha.wait_idle(quiet=0.2)
    assert await world.referral_status(ref) is Status.WITHDRAWN


async def test_forged_decisions_change_nothing(world: World, core: Core) -> None:
    """A stranger, or another organisation's member, tapping Accept changes nothing and is told why."""
    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    stranger = world.server.user(first_name="Mallory", language_code="en")
    await stranger.tap(data=f"r:{referral_id(card)}:1", message=card)
    await world.beta_staff.tap(data=f"r:{referral_id(card)}:1", message=card, forge=True)
    await world.alpha.wait_idle(quiet=0.3)
    assert await world.referral_status(referral_id(card)) is Status.PENDING
    refusal = core.translator.text("es", "card.not_member")  # the intake chat's language
    assert [a.text for a in world.alpha.callback_answers] == [refusal, refusal]
    assert card.buttons  # still waiting for a real member


async def test_a_button_of_another_kind_on_a_card_is_answered_and_does_nothing(world: World) -> None:
    """Data that is no decision (forged, or a questionnaire button's) on an intake card: the member's spinner stops,
    nothing is posted, the referral waits."""
    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    posted = len(world.alpha.messages)
    await world.alpha_staff.tap(data="a:nationality:ven", message=card, forge=True)
    await world.alpha.wait_idle(quiet=0.3)
    assert [a.text for a in world.alpha.callback_answers] == [None]
    assert len(world.alpha.messages) == posted
    assert await world.referral_status(referral_id(card)) is Status.PENDING


@pytest.mark.parametrize("capacities", [{"alpha": 1, "beta": 10}])
async def test_capacity_running_out(world: World) -> None:
    """With one place left, the first Share takes it; the next person is told it is full and offered others."""
    first, second = world.server.user(language_code="en"), world.server.user(language_code="en")
    await finish_without_supporter(first)
    await finish_without_supporter(second)
    await share_with(first, "alpha")
    await world.alpha.wait_for(lambda m: bool(m.buttons))
    await share_with(second, "alpha")
    full = await second.wait_for(lambda m: "no room this week" in m.text)
    await second.wait_idle(quiet=0.2)
    assert "Beta Example" in " ".join(m.text for m in second.messages if m.message_id > full.message_id)
    await world.alpha.wait_idle(quiet=0.3)
    assert len([m for m in world.alpha.messages if m.buttons]) == 1


@pytest.mark.parametrize("capacities", [{"alpha": 1, "beta": 10}])
async def test_two_people_race_for_the_last_place(world: World) -> None:
    """Two Shares for the last place at the same moment: exactly one card reaches the intake chat."""
    people = [world.server.user(language_code="en") for _ in range(2)]
    for person in people:
        await finish_without_supporter(person)
    screens = []
    for person in people:
        offer = next(m for m in person.messages if any(b.data == "o:alpha" for r in m.buttons for b in r))
        await person.tap(data="o:alpha", message=offer)
        screens.append(await person.wait_for(lambda m: any(b.data == "s:alpha:1" for r in m.buttons for b in r)))
    await asyncio.gather(*(p.tap(data="s:alpha:1", message=s) for p, s in zip(people, screens, strict=True)))
    outcomes = await asyncio.gather(
        *(p.wait_for(lambda m: "I sent your request" in m.text or "no room" in m.text) for p in people)
    )
    assert sorted("no room" in m.text for m in outcomes) == [False, True]
    await world.alpha.wait_idle(quiet=0.3)
    assert len(world.alpha.messages) == 1


async def test_admin_directory_commands(world: World) -> None:
    """An admin lists organisations, pauses one (it is no longer offered) and exports referrals as CSV."""
    admin = world.server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send("/orgs")
    listing = await admin.wait_for(lambda m: "alpha" in m.text)
    assert "beta" in listing.text
    assert "0/10" in listing.text
    await admin.send("/org_pause alpha")
    await admin.wait_for(lambda m: m.text == "Done.")
    user = world.server.user(language_code="en")
    offers = await finish_without_supporter(user)
    assert {b.data for m in offers for r in m.buttons for b in r} == {"o:beta"}
    await share_with(user, "beta")
    await world.beta.wait_for(lambda m: bool(m.buttons))
    await admin.send("/referrals_csv")
    export = await admin.wait_for(lambda m: m.document is not None)
    assert export.document is not None
    rows = export.document.content.decode().splitlines()
    assert rows[0].startswith("id,organisation,status")
    assert ",beta,pending," in rows[1]
    assert str(user.id) not in export.document.content.decode()


async def test_admin_commands_do_not_exist_for_others(world: World) -> None:
    """Someone who is not an admin sending /org_pause is answered as if it were ordinary text."""
    user = world.server.user(language_code="en")
    await begin(user, "en")
    await user.send("/org_pause alpha")
    reply = await user.wait_for(lambda m: "did not understand" in m.text)
    assert "What is your nationality?" in reply.text
    store = await open_store(f"sqlite+aiosqlite:///{world.database}")
    alpha = await Referrals(store).organisation("alpha")
    await store.close()
    assert alpha is not None
    assert alpha.active


async def test_admin_adds_an_organisation_and_lists_referrals(world: World) -> None:
    """/org_set adds an organisation from YAML (a bad one is refused with the field named); /referrals filters."""
    admin = world.server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send("/org_set\nid: delta\nname: Delta Demo (fictional)\nofferz: [legal_advice]")
    refused = await admin.wait_for(lambda m: m.text.startswith("Not saved"))
    assert "field “offers”: is required" in refused.text  # the misspelt key leaves the required one missing
    await admin.send(
        "/org_set\nid: delta\nname: Delta Demo (fictional)\noffers: [legal_advice]\nlanguages: [en]\n"
        "nationalities: [any]\nregions: [any]\nwebsite: https://example.org/delta\nweekly_capacity: 3"
    )
    await admin.wait_for(lambda m: m.text == "Saved: delta.")
    await admin.send("/orgs")
    assert "Delta Demo" in (await admin.wait_for(lambda m: "delta" in m.text)).text

    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    await world.alpha.wait_for(lambda m: bool(m.buttons))
    await admin.send("/referrals accepted")
    assert (await admin.wait_for(lambda m: m.text == "No referrals.")).text
    await admin.send("/referrals pending")
    listing = await admin.wait_for(lambda m: m.text.startswith("Referrals: 1"))
    assert "alpha · pending" in listing.text


async def test_anyone_can_ask_for_organisations(world: World) -> None:
    """/organisations shows organisations to someone whose result did not list them (here: not eligible)."""
    user = world.server.user(language_code="en")
    await begin(user, "en")
    for question, option in with_answers(removal_order="yes"):
        await answer(user, question, option)
    assert not any(b.data.startswith("o:") for m in user.messages for r in m.buttons for b in r)
    await user.send("/organisations")
    await user.wait_for(lambda m: any(b.data.startswith("o:") for r in m.buttons for b in r))


async def test_unreachable_intake_chat_is_said_at_once(world: World) -> None:
    """If the card cannot reach the intake chat (bot removed: 403), the person is told now and offered others."""
    world.server.block(world.alpha.id)
    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    told = await user.wait_for(lambda m: "could not reach Alfa Ejemplo" in m.text)
    follow_up = await user.wait_for(lambda m: any(b.data == "o:beta" for r in m.buttons for b in r))
    assert told.message_id <= follow_up.message_id
    store = await open_store(f"sqlite+aiosqlite:///{world.database}")
    (referral,) = await Referrals(store).listing()
    await store.close()
    assert referral.status is Status.UNDELIVERED


async def test_delete_withdraws_open_requests_and_clears_their_cards(world: World) -> None:
    """/delete withdraws the person's open request first: the intake chat is told and the card is cleared."""
    user = world.server.user(username="yorbis_v", language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    ref = referral_id(card)
    await user.send("/delete")
    confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
    await user.tap(data="d:1", message=confirm)
    await world.alpha.wait_for(lambda m: m is not card and f"#{ref}" in m.text)
    await world.alpha.wait_until(lambda: "borrar sus datos" in card.text)
    assert "yorbis_v" not in card.text
    assert not card.buttons
    assert await world.referral_status(ref) is Status.WITHDRAWN


async def test_delete_after_acceptance_asks_the_organisation_to_erase_too(world: World) -> None:
    """An organisation accepted the person, who later erases their data: the card is cleared, and the intake
    chat is asked to respect the erasure in what it keeps."""
    user = world.server.user(username="yorbis_v", language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    ref = referral_id(card)
    await world.alpha_staff.tap(data=f"r:{ref}:1")
    await user.wait_for(lambda m: m.text.startswith("✅") and "Alfa Ejemplo" in m.text)
    await user.send("/delete")
    confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
    await user.tap(data="d:1", message=confirm)
    notice = await world.alpha.wait_for(lambda m: m is not card and f"#{ref}" in m.text)
    assert "bórrenla también" in notice.text
    assert "yorbis_v" not in card.text
    assert "borrar sus datos" in card.text
    assert world.beta.messages == []


@pytest.mark.parametrize(
    ("first_name", "shown"),
    [
        ("@helpdesk", "helpdesk"),
        ("\u202enimda@", "nimda"),  # an RTL override: Telegram would display "@admin"
        ("Ana\u200b \u2066María\u2069", "Ana María"),  # zero-width space, an isolate
    ],
)
async def test_a_first_name_never_passes_for_a_username(world: World, first_name: str, shown: str) -> None:
    """A person without a username whose first name looks like one (or hides format characters) appears on the
    card and on their own sharing screen labelled as a name, without "@" and without the hidden characters."""
    user = world.server.user(first_name=first_name, language_code="en")
    await finish_without_supporter(user)
    screen = await share_with(user, "alpha")
    assert f"• Your name on Telegram: {shown} (tg://user?id={user.id})" in screen.text.splitlines()
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    assert f"Nombre: {shown} (sin usuario de Telegram: tg://user?id={user.id})" in card.text.splitlines()
    for text in (card.text, screen.text):
        assert "@" not in text
        assert not [c for c in text if unicodedata.category(c) == "Cf"]


async def test_a_username_is_shown_as_one(world: World) -> None:
    """A person with a username appears on the card as "Telegram: @username", and their first name not at all."""
    user = world.server.user(first_name="@helpdesk", username="yorbis_v", language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    assert f"Telegram: @yorbis_v (tg://user?id={user.id})" in card.text.splitlines()
    assert "helpdesk" not in card.text


async def test_a_members_name_on_the_verdict_is_cleaned(world: World) -> None:
    """The member who accepts is named on the card without "@" or format characters, however they named themselves."""
    user = world.server.user(language_code="en")
    await finish_without_supporter(user)
    await share_with(user, "alpha")
    card = await world.alpha.wait_for(lambda m: bool(m.buttons))
    world.alpha_staff.api["first_name"] = "@Marta\u202e"  # renamed in the Telegram app since joining
    await world.alpha_staff.tap(data=f"r:{referral_id(card)}:1")
    await world.alpha.wait_until(lambda: card.edited)
    assert card.text.endswith("Marta.")
    assert "@" not in card.text
    assert "\u202e" not in card.text
