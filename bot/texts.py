"""Every text key the transport itself uses (the flow data brings its own); all must exist in every catalog."""

from enum import StrEnum


class T(StrEnum):
    LANG_NAME = "lang.name"
    LANG_PROMPT = "lang.prompt"
    LANG_CHANGED = "lang.changed"
    PRIVACY_NOTICE = "privacy.notice"
    PRIVACY_ACCEPT = "privacy.accept"
    PRIVACY_DECLINE = "privacy.decline"
    PRIVACY_DECLINED = "privacy.declined"
    PRIVACY_TEXT = "privacy.text"
    QUESTION_PROGRESS = "question.progress"
    BUTTON_BACK = "button.back"
    ANSWER_CHOSEN = "answer.chosen"
    NOT_UNDERSTOOD = "reply.not_understood"
    NOT_CURRENT = "reply.not_current"
    AT_FIRST = "reply.at_first"
    RESTARTED = "reply.restarted"
    MEDIA = "reply.media"
    FINISHED = "reply.finished"
    ERROR = "reply.error"
    RULES_AS_OF = "result.rules_as_of"
    RESULT_UNCERTAIN = "result.uncertain"
    RESULT_PENDING = "result.pending"
    RESULT_REVIEW_NEXT = "result.review_next"
    RESULT_NEXT = "result.next"
    HELP = "help.text"
    DELETE_CONFIRM = "delete.confirm"
    DELETE_YES = "delete.yes"
    DELETE_NO = "delete.no"
    DELETE_DONE = "delete.done"
    DELETE_CANCELLED = "delete.cancelled"
    DELETE_NOTHING = "delete.nothing"
    DATE_LONG = "date.long"


#: Telegram commands, in menu order, each described by `cmd.<name>`.
COMMANDS = ("start", "back", "restart", "language", "help", "privacy", "delete")

MONTHS = tuple(f"date.month.{n}" for n in range(1, 13))


def transport_keys() -> set[str]:
    return {*(t.value for t in T), *(f"cmd.{c}" for c in COMMANDS), *MONTHS}
