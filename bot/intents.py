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
class AskDelete:
    pass


@dataclass(frozen=True)
class ConfirmDelete:
    confirmed: bool


Intent = (
    Start
    | AskLanguage
    | ChooseLanguage
    | Consent
    | Answer
    | GoBack
    | StartOver
    | Typed
    | Media
    | Help
    | ShowPrivacy
    | AskDelete
    | ConfirmDelete
)


def command_intent(command: str, language_hint: str | None = None) -> Intent | None:
    """The intent of a slash command ("/start", "/back@PuenteBot"), or None for one the bot does not have."""
    name = command.lstrip("/").split("@", 1)[0].split(maxsplit=1)[0].lower() if command.strip("/ ") else ""
    intents: dict[str, Intent] = {
        "start": Start(language_hint),
        "back": GoBack(),
        "restart": StartOver(),
        "language": AskLanguage(),
        "help": Help(),
        "privacy": ShowPrivacy(),
        "delete": AskDelete(),
    }
    return intents.get(name)
