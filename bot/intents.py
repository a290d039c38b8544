"""What a person asks for, whatever the transport: Telegram buttons and commands, or terminal lines.

Buttons carry intents (the Telegram layer packs them into callback data), so no handler ever routes on a
translated label.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Start:
    """/start: continue where they were, or begin with the language picker."""

    language_hint: str | None = None


@dataclass(frozen=True)
class AskLanguage:
    """/language."""


@dataclass(frozen=True)
class ChooseLanguage:
    language: str


@dataclass(frozen=True)
class Consent:
    """The answer to the privacy notice, shown in `language` before anything was stored."""

    language: str
    accepted: bool


@dataclass(frozen=True)
class Answer:
    question_id: str
    option_id: str


@dataclass(frozen=True)
class GoBack:
    """/back or the Back button."""


@dataclass(frozen=True)
class StartOver:
    """/restart."""


@dataclass(frozen=True)
class ShowResult:
    """The "See my result again" button: the whole result, once more."""


@dataclass(frozen=True)
class Typed:
    """Free text, mapped to an option of the current question if it can be."""

    text: str


@dataclass(frozen=True)
class Media:
    """A sticker, photo, voice note or anything else that is not text."""


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class ShowPrivacy:
    pass


@dataclass(frozen=True)
class ShowMyData:
    """/mydata: everything the bot keeps about the person (the right of access)."""


@dataclass(frozen=True)
class AskDelete:
    pass


@dataclass(frozen=True)
class ConfirmDelete:
    confirmed: bool


@dataclass(frozen=True)
class ShowOrganisations:
    """/organisations: organisations that could help this person."""


@dataclass(frozen=True)
class PickOrganisation:
    """ "Ask this organisation to contact me": shows exactly what would be shared, nothing leaves yet."""

    org_id: str


@dataclass(frozen=True)
class ShareWith:
    """The answer to the sharing screen: only `share=True` creates a referral."""

    org_id: str
    share: bool


@dataclass(frozen=True)
class Withdraw:
    referral_id: int


@dataclass(frozen=True)
class Decide:
    """An organisation member's Accept or Decline on a referral card in the intake chat."""

    referral_id: int
    accept: bool


@dataclass(frozen=True)
class AskHuman:
    """/human, or the button on result screens: the person wants to talk to someone."""


@dataclass(frozen=True)
class ShareWithHuman:
    """Open the handoff; `share` is whether staff may see the person's answers."""

    share: bool


@dataclass(frozen=True)
class LeaveHandoff:
    """/bot: back to the questionnaire, closing the conversation with staff."""


@dataclass(frozen=True)
class StopUpdates:
    """/stop: no more program updates."""


@dataclass(frozen=True)
class Subscribe:
    """/subscribe: program updates again."""


@dataclass(frozen=True)
class Compose:
    """A button of the admin's broadcast composer: `action` (skip, fallback, filter, set, …) and its value."""

    action: str
    value: str = ""


@dataclass(frozen=True)
class ControlBroadcast:
    """Pause, resume or cancel a broadcast, from its progress message or /broadcasts."""

    broadcast_id: int
    action: str


@dataclass(frozen=True)
class SwitchProgram:
    """/program's buttons: `stage` is ask (confirm?), do (switch), keep (don't), tell (broadcast to the affected)."""

    program_id: str
    stage: str


Intent = (
    Start
    | AskLanguage
    | ChooseLanguage
    | Consent
    | Answer
    | GoBack
    | StartOver
    | ShowResult
    | Typed
    | Media
    | Help
    | ShowPrivacy
    | ShowMyData
    | AskDelete
    | ConfirmDelete
    | ShowOrganisations
    | PickOrganisation
    | ShareWith
    | Withdraw
    | Decide
    | AskHuman
    | ShareWithHuman
    | LeaveHandoff
    | StopUpdates
    | Subscribe
    | Compose
    | ControlBroadcast
    | SwitchProgram
)


def command_intent(command: str, language_hint: str | None = None) -> Intent | None:
    """The intent of a slash command ("/start", "/back@PuenteBot"), or None for one the bot does not have."""
    words = command.lstrip("/").split("@", 1)[0].split(maxsplit=1)  # none for "/@bot" or "/ " + a no-break space
    name = words[0].lower() if words else ""
    intents: dict[str, Intent] = {
        "start": Start(language_hint),
        "back": GoBack(),
        "restart": StartOver(),
        "language": AskLanguage(),
        "help": Help(),
        "privacy": ShowPrivacy(),
        "mydata": ShowMyData(),
        "delete": AskDelete(),
        "organisations": ShowOrganisations(),
        "human": AskHuman(),
        "bot": LeaveHandoff(),
        "stop": StopUpdates(),
        "subscribe": Subscribe(),
    }
    return intents.get(name)
