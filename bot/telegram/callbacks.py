"""Callback data for every button: ids only, never labels. aiogram's CallbackData keeps each under 64 bytes."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData

from bot.intents import Answer, ChooseLanguage, ConfirmDelete, Consent, GoBack, Intent


class AnswerCb(CallbackData, prefix="a"):
    q: str
    o: str


class BackCb(CallbackData, prefix="b"):
    pass


class LanguageCb(CallbackData, prefix="l"):
    lang: str


class ConsentCb(CallbackData, prefix="c"):
    lang: str
    ok: bool


class DeleteCb(CallbackData, prefix="d"):
    ok: bool


def pack(intent: Intent) -> str:
    """The callback data a button with this intent carries."""
    match intent:
        case Answer(question_id=q, option_id=o):
            return AnswerCb(q=q, o=o).pack()
        case GoBack():
            return BackCb().pack()
        case ChooseLanguage(language=lang):
            return LanguageCb(lang=lang).pack()
        case Consent(language=lang, accepted=ok):
            return ConsentCb(lang=lang, ok=ok).pack()
        case ConfirmDelete(confirmed=ok):
            return DeleteCb(ok=ok).pack()
    raise ValueError(f"no button can carry {intent!r}")


def unpack(data: str) -> Intent | None:
    """The intent behind callback data, or None for data this bot never issued."""
    for kind in (AnswerCb, BackCb, LanguageCb, ConsentCb, DeleteCb):
        try:
            parsed = kind.unpack(data)
        except (TypeError, ValueError):
            continue
        match parsed:
            case AnswerCb(q=q, o=o):
                return Answer(q, o)
            case BackCb():
                return GoBack()
            case LanguageCb(lang=lang):
                return ChooseLanguage(lang)
            case ConsentCb(lang=lang, ok=ok):
                return Consent(lang, accepted=ok)
            case DeleteCb(ok=ok):
                return ConfirmDelete(confirmed=ok)
    return None
