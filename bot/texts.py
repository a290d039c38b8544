"""Every text key the transport itself uses (the flow data brings its own); all must exist in every catalog."""

from enum import StrEnum

from flows.model import OUTCOMES


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
    ORGS_INTRO = "orgs.intro"
    ORGS_NONE = "orgs.none"
    ORGS_ASK = "orgs.ask"
    ORGS_UNVERIFIED = "orgs.unverified"
    ORGS_LANGUAGES = "orgs.languages"
    ORGS_WEBSITE = "orgs.website"
    ORGS_PHONE = "orgs.phone"
    ORGS_EMAIL = "orgs.email"
    ORGS_FREE = "orgs.free"
    CONSENT_TITLE = "consent.title"
    CONSENT_LANGUAGE = "consent.language"
    CONSENT_CONTACT = "consent.contact"
    CONSENT_ANSWERS = "consent.answers"
    CONSENT_SHARE = "consent.share"
    CONSENT_DONT = "consent.dont"
    CONSENT_NOT_SHARED = "consent.not_shared"
    REFERRAL_SENT = "referral.sent"
    REFERRAL_WITHDRAW_BUTTON = "referral.withdraw_button"
    REFERRAL_WITHDRAWN = "referral.withdrawn"
    REFERRAL_CLOSED = "referral.closed"
    REFERRAL_ALREADY = "referral.already"
    REFERRAL_FULL = "referral.full"
    REFERRAL_UNAVAILABLE = "referral.unavailable"
    REFERRAL_ACCEPTED = "referral.accepted"
    REFERRAL_DECLINED = "referral.declined"
    REFERRAL_UNDELIVERED = "referral.undelivered"
    HANDOFF_BUTTON = "handoff.button"
    HANDOFF_ASK = "handoff.ask"
    HANDOFF_SHARE_YES = "handoff.share_yes"
    HANDOFF_SHARE_NO = "handoff.share_no"
    HANDOFF_OPENED = "handoff.opened"
    HANDOFF_OPENED_OFF_DUTY = "handoff.opened_off_duty"
    HANDOFF_HOURS = "handoff.hours"
    HANDOFF_ALREADY = "handoff.already"
    HANDOFF_UNAVAILABLE = "handoff.unavailable"
    HANDOFF_LEFT = "handoff.left"
    HANDOFF_CLOSED = "handoff.closed"
    HANDOFF_BUSY = "handoff.busy"
    STAFF_CARD = "staff.card"
    STAFF_RESULT = "staff.result"
    STAFF_NO_ANSWERS = "staff.no_answers"
    STAFF_REFERRAL = "staff.referral"
    STAFF_CLAIMED = "staff.claimed"
    STAFF_ESCALATED = "staff.escalated"
    STAFF_ASSIGNED = "staff.assigned"
    STAFF_NOT_ADVISOR = "staff.not_advisor"
    STAFF_CLOSED = "staff.closed"
    STAFF_LEFT = "staff.left"
    STAFF_ERASED = "staff.erased"
    STAFF_NOT_ALLOWED = "staff.not_allowed"
    STAFF_USAGE = "staff.usage"
    STAFF_QUEUE_HEADER = "staff.queue_header"
    STAFF_QUEUE_LINE = "staff.queue_line"
    STAFF_QUEUE_EMPTY = "staff.queue_empty"
    STAFF_REMINDER = "staff.reminder"
    ADMIN_GRANTED = "admin.granted"
    ADMIN_REVOKED = "admin.revoked"
    CARD_TITLE = "card.title"
    CARD_LANGUAGE = "card.language"
    CARD_CONTACT = "card.contact"
    CARD_ANSWERS = "card.answers"
    CARD_FREE = "card.free"
    CARD_ACCEPT = "card.accept"
    CARD_DECLINE = "card.decline"
    CARD_ACCEPTED = "card.accepted"
    CARD_DECLINED = "card.declined"
    CARD_WITHDRAWN = "card.withdrawn"
    CARD_NOT_MEMBER = "card.not_member"
    CARD_CLOSED = "card.closed"
    ADMIN_USAGE = "admin.usage"
    ADMIN_ORGS_HEADER = "admin.orgs_header"
    ADMIN_ACTIVE = "admin.active"
    ADMIN_PAUSED = "admin.paused"
    ADMIN_UNVERIFIED = "admin.unverified"
    ADMIN_DONE = "admin.done"
    ADMIN_UNKNOWN = "admin.unknown"
    ADMIN_ORG_SAVED = "admin.org_saved"
    ADMIN_ORG_INVALID = "admin.org_invalid"
    ADMIN_REFERRALS_HEADER = "admin.referrals_header"
    ADMIN_REFERRALS_NONE = "admin.referrals_none"
    ADMIN_EXPORT_CAPTION = "admin.export_caption"
    UPDATES_STOPPED = "updates.stopped"
    UPDATES_SUBSCRIBED = "updates.subscribed"
    UPDATES_ALREADY = "updates.already"
    UPDATES_NOTHING = "updates.nothing"
    BC_START = "bc.start"
    BC_ASK_VERSION = "bc.ask_version"
    BC_SKIP = "bc.skip"
    BC_DISCARD = "bc.discard"
    BC_DISCARDED = "bc.discarded"
    BC_NEED_TEXT = "bc.need_text"
    BC_TOO_LONG = "bc.too_long"
    BC_NEED_ONE = "bc.need_one"
    BC_ASK_FALLBACK = "bc.ask_fallback"
    BC_AUDIENCE = "bc.audience"
    BC_EVERYONE = "bc.everyone"
    BC_PICK_VALUE = "bc.pick_value"
    BC_HANDOFF_YES = "bc.handoff_yes"
    BC_CLEAR = "bc.clear"
    BC_CONTINUE = "bc.continue"
    BC_PREVIEW_OF = "bc.preview_of"
    BC_SUMMARY = "bc.summary"
    BC_SUMMARY_FALLBACK = "bc.summary_fallback"
    BC_SEND_NOW = "bc.send_now"
    BC_SCHEDULE = "bc.schedule"
    BC_CHANGE_AUDIENCE = "bc.change_audience"
    BC_QUEUED = "bc.queued"
    BC_ASK_WHEN = "bc.ask_when"
    BC_BAD_WHEN = "bc.bad_when"
    BC_PAST_WHEN = "bc.past_when"
    BC_SCHEDULED = "bc.scheduled"
    BC_WHEN = "bc.when"
    BC_NO_DRAFT = "bc.no_draft"
    BC_LIST_TITLE = "bc.list_title"
    BC_LIST_EMPTY = "bc.list_empty"
    BC_LIST_ITEM = "bc.list_item"
    BC_PROGRESS_TITLE = "bc.progress_title"
    BC_PROGRESS_COUNTS = "bc.progress_counts"
    BC_PROGRESS_ETA = "bc.progress_eta"
    BC_PAUSE = "bc.pause"
    BC_RESUME = "bc.resume"
    BC_CANCEL = "bc.cancel"
    BC_REPORT_TITLE = "bc.report_title"
    BC_REPORT_COUNTS = "bc.report_counts"
    BC_REPORT_REASONS = "bc.report_reasons"
    BC_CONTROL_REFUSED = "bc.control_refused"


#: Telegram commands, in menu order, each described by `cmd.<name>`.
COMMANDS = (
    "start", "back", "restart", "language", "organisations", "human", "help", "privacy", "stop", "subscribe", "delete",
)  # fmt: skip

MONTHS = tuple(f"date.month.{n}" for n in range(1, 13))

#: Ticket statuses shown in the staff queue, each described by `staff.status.<name>`.
QUEUED_STATUSES = ("waiting", "escalated")

#: A broadcast's states, audience dimensions and the referral statuses it can filter on, each with a label
#: (`bc.state.<name>`, `bc.dimension.<name>`, `bc.referral.<name>`).
BROADCAST_STATES = ("queued", "scheduled", "running", "paused", "cancelled", "done")
AUDIENCE_DIMENSIONS = ("language", "outcome", "nationality", "country", "referral", "handoff")
REFERRAL_STATUSES = ("pending", "accepted", "declined", "withdrawn", "undelivered")

#: What an organisation can offer, each described by `offer.<name>`.
OFFERS = ("find_supporter", "act_as_supporter", "legal_advice", "travel_help")


def transport_keys() -> set[str]:
    return {
        *(t.value for t in T),
        *(f"cmd.{c}" for c in COMMANDS),
        *MONTHS,
        *(f"offer.{o}" for o in OFFERS),
        *(f"result.label.{outcome}" for outcome in OUTCOMES),
        *(f"staff.status.{status}" for status in QUEUED_STATUSES),
        *(f"bc.state.{state}" for state in BROADCAST_STATES),
        *(f"bc.dimension.{d}" for d in AUDIENCE_DIMENSIONS),
        *(f"bc.referral.{status}" for status in REFERRAL_STATUSES),
    }
