"""Plain values the transports deliver: a message's text and its buttons, nothing Telegram-specific."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.intents import Intent

#: Telegram refuses longer texts, and longer captions under a photo or document.
MAX_TEXT = 4096
MAX_CAPTION = 1024
#: What a person reads comfortably in one message on a small phone: texts are written to stay under it (a test
#: checks every catalog), and the renderer joins short messages only up to it.
READABLE = 700


@dataclass(frozen=True)
class Button:
    label: str
    intent: Intent


@dataclass(frozen=True)
class Attachment:
    """A file sent with the message (the text becomes its caption)."""

    filename: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class FileRef:
    """A file Telegram already has (an admin sent it), sent again by its id; the text becomes its caption."""

    kind: Literal["photo", "document"]
    file_id: str


@dataclass(frozen=True)
class Outgoing:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachment: Attachment | None = None
    file: FileRef | None = None
    #: The text is Telegram HTML (an admin's formatted broadcast), not plain text.
    html: bool = False
    #: Sent with protect_content: Telegram apps let nobody forward or save it (cards about a person).
    protect: bool = False


@dataclass(frozen=True)
class Reply:
    """Everything one input produces, in the order to deliver it."""

    messages: tuple[Outgoing, ...] = ()
    #: New text for the message whose button was tapped (its keyboard removed): shows what was chosen.
    edit_source: str | None = None
    #: A short notice on the tapped button itself (answerCallbackQuery).
    toast: str | None = None
    #: The person picked this language: their chat's command menu speaks it from now on (bot.telegram.menus).
    menu_language: str | None = None
    #: The person erased their data: their chat's command menu goes back to everyone's.
    menu_cleared: bool = False


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a text into pieces Telegram accepts, at paragraph, then line, then word boundaries."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        # The last paragraph break that leaves a fair piece, else the last line break, else the last space.
        cut = next((at for sep in ("\n\n", "\n", " ") if (at := window.rfind(sep)) > limit // 3), -1)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces
