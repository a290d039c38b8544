"""Callback data for every button: ids only, never labels. aiogram's CallbackData keeps each under 64 bytes."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData

from bot.intents import (
    Answer,
    AskHuman,
    ChooseLanguage,
    Compose,
    ConfirmDelete,
    Consent,
    ControlBroadcast,
    Decide,
    GoBack,
    Intent,
    PickOrganisation,
    ShareWith,
    ShareWithHuman,
    ShowOrganisations,
    ShowResult,
    StartOver,
    SwitchProgram,
    Withdraw,
)


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


class OrganisationCb(CallbackData, prefix="o"):
    org: str


class ShareCb(CallbackData, prefix="s"):
    org: str
    ok: bool


class WithdrawCb(CallbackData, prefix="w"):
    ref: int


class HumanCb(CallbackData, prefix="h"):
    """Talk to a person; `share` is None on the first button, then the answer about sharing answers."""

    share: bool | None = None


class NextCb(CallbackData, prefix="n"):
    """What a person can do after their result: see it again, organisations, start again."""

    act: str


#: NextCb's actions and the intents they stand for.
_NEXT: dict[str, Intent] = {"result": ShowResult(), "orgs": ShowOrganisations(), "restart": StartOver()}


class DecideCb(CallbackData, prefix="r"):
    ref: int
    ok: bool


class ComposeCb(CallbackData, prefix="bc"):
    """A composer button. Only the admin whose draft it is can use it: the draft is looked up by who taps."""

    act: str
    val: str = ""


class ControlCb(CallbackData, prefix="bx"):
    """Pause/resume/cancel a broadcast; admin rights are checked when tapped."""

    id: int
    act: str


class ProgramCb(CallbackData, prefix="pg"):
    """/program's buttons; admin rights are checked when tapped."""

    id: str
    stage: str


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
        case PickOrganisation(org_id=org):
            return OrganisationCb(org=org).pack()
        case ShareWith(org_id=org, share=ok):
            return ShareCb(org=org, ok=ok).pack()
        case Withdraw(referral_id=ref):
            return WithdrawCb(ref=ref).pack()
        case Decide(referral_id=ref, accept=ok):
            return DecideCb(ref=ref, ok=ok).pack()
        case ShowResult() | ShowOrganisations() | StartOver():
            return NextCb(act=next(act for act, known in _NEXT.items() if known == intent)).pack()
        case AskHuman():
            return HumanCb().pack()
        case ShareWithHuman(share=share):
            return HumanCb(share=share).pack()
        case Compose(action=act, value=val):
            return ComposeCb(act=act, val=val).pack()
        case ControlBroadcast(broadcast_id=broadcast_id, action=act):
            return ControlCb(id=broadcast_id, act=act).pack()
        case SwitchProgram(program_id=program_id, stage=stage):
            return ProgramCb(id=program_id, stage=stage).pack()
    raise ValueError(f"no button can carry {intent!r}")


def unpack(data: str) -> Intent | None:
    """The intent behind callback data, or None for data this bot never issued."""
    kinds: tuple[type[CallbackData], ...] = (
        AnswerCb, BackCb, LanguageCb, ConsentCb, DeleteCb, OrganisationCb, ShareCb, WithdrawCb, DecideCb, HumanCb,
        NextCb, ComposeCb, ControlCb, ProgramCb,
    )  # fmt: skip
    for kind in kinds:
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
            case OrganisationCb(org=org):
                return PickOrganisation(org)
            case ShareCb(org=org, ok=ok):
                return ShareWith(org, share=ok)
            case WithdrawCb(ref=ref):
                return Withdraw(ref)
            case DecideCb(ref=ref, ok=ok):
                return Decide(ref, accept=ok)
            case NextCb(act=act):
                return _NEXT.get(act)
            case HumanCb(share=None):
                return AskHuman()
            case HumanCb(share=share):
                return ShareWithHuman(share=bool(share))
            case ComposeCb(act=act, val=val):
                return Compose(act, val)
            case ControlCb(id=broadcast_id, act=act):
                return ControlBroadcast(broadcast_id, act)
            case ProgramCb(id=program_id, stage=stage):
                return SwitchProgram(program_id, stage)
    return None
