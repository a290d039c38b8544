"""What the fake Telegram Bot API accepts: the method table and Telegram's content rules.

The method table is transcribed by hand from the official Bot API 10.1 reference, for exactly
the methods the fake implements. It is deliberately *not* loaded from the reference at run time:
the fake must work in a bare checkout, and a hand-written table makes every accepted field a
reviewed decision. ``tests/test_fakebotapi.py`` cross-checks it against the reference whenever a
copy of the reference sits beside the repository, so drift is caught instead of guessed at.

Besides the table, this module holds the validation Telegram applies to message content (HTML
entity parsing, text length, keyboards, bot commands). Those rules are what makes the fake
useful: a bot that passes against it will not be surprised by a 400 in production.

Everything here is pure (no I/O, no state), so it can be unit-tested and reused freely.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Final

__all__ = [
    "CHAT_ACTIONS",
    "DEFAULT_UPDATE_TYPES",
    "FORUM_TOPIC_ICON_COLORS",
    "MAX_PHOTO_UPLOAD_BYTES",
    "MAX_UPLOAD_BYTES",
    "METHODS",
    "UPDATE_TYPES",
    "BotAPIError",
    "CommandScopeKey",
    "Field",
    "FormattedText",
    "Method",
    "Requirement",
    "UploadedFile",
    "clean_topic_name",
    "coerce_params",
    "format_text",
    "image_size",
    "lookup_method",
    "png_image",
    "utf16_len",
    "validate_callback_answer_text",
    "validate_commands",
    "validate_icon_color",
    "validate_photo_dimensions",
    "validate_reply_markup",
    "validate_scope",
]


class BotAPIError(Exception):
    """A Bot API error response, raised anywhere and rendered once by the HTTP layer.

    Carrying the exact Telegram status and description in one exception keeps handlers linear:
    they validate top to bottom and simply raise, like the real server's ``{"ok": false}`` path.
    """

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after

    @classmethod
    def bad_request(cls, detail: str) -> BotAPIError:
        """400 with Telegram's ``Bad Request:`` prefix, which aiogram and humans both grep for."""
        return cls(400, f"Bad Request: {detail}")

    def to_json(self) -> dict[str, Any]:
        """The response body exactly as Telegram shapes it (``parameters`` only when meaningful)."""
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


# --------------------------------------------------------------------------------------------
# Method table
# --------------------------------------------------------------------------------------------

INTEGER: Final = ("Integer",)
STRING: Final = ("String",)
BOOLEAN: Final = ("Boolean",)
INTEGER_OR_STRING: Final = ("Integer", "String")
ANY_REPLY_MARKUP: Final = ("InlineKeyboardMarkup", "ReplyKeyboardMarkup", "ReplyKeyboardRemove", "ForceReply")
INPUT_FILE_OR_STRING: Final = ("InputFile", "String")

# Types that travel as plain form values; an InputFile is a multipart file part (or its reference).
_SCALAR_TYPES: Final = frozenset({"Integer", "String", "Boolean", "Float", "InputFile"})

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
"""Telegram's limit for files bots upload (50 MB); bigger requests are 413 Request Entity Too Large."""
MAX_PHOTO_UPLOAD_BYTES: Final = 10 * 1024 * 1024
"""sendPhoto's limit for an uploaded photo (10 MB); send bigger pictures as documents."""


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request, as the HTTP layer read it.

    It stays in the raw parameters under its part name; an ``InputFile`` field either *is* such
    a part or names one with ``attach://<part name>``, which is how aiogram uploads.
    """

    part_name: str
    file_name: str
    content_type: str
    content: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.part_name!r}, {self.file_name!r}, {self.content_type!r}, {len(self.content)} bytes)"


@dataclass(frozen=True, slots=True)
class Field:
    """One parameter of a method, with the type names spelled as in the reference."""

    name: str
    types: tuple[str, ...]
    required: bool = False

    @property
    def is_json(self) -> bool:
        """Objects and arrays travel as JSON-encoded strings in form bodies, and must be decoded."""
        return not _SCALAR_TYPES.issuperset(self.types)


@dataclass(frozen=True, slots=True)
class Requirement:
    """A requirement the reference states in prose rather than with the ``required`` flag.

    For example editMessageText needs ``chat_id`` and ``message_id`` *unless* ``inline_message_id``
    is given. Keeping these separate lets the cross-check compare ``required`` flags one to one.
    """

    fields: tuple[str, ...]
    unless: str


@dataclass(frozen=True, slots=True)
class Method:
    """A Bot API method the fake implements.

    ``legacy`` are parameters Telegram still honours although the reference no longer lists
    them (``reply_to_message_id``, which aiogram still sends when asked to). They are decoded
    like ``fields`` but kept apart, so the cross-check against the reference stays exact.
    """

    name: str
    returns: str
    fields: tuple[Field, ...] = ()
    requirements: tuple[Requirement, ...] = ()
    legacy: tuple[Field, ...] = ()

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def required(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.required)


def _method(
    name: str,
    returns: str,
    *fields: Field,
    requirements: tuple[Requirement, ...] = (),
    legacy: tuple[Field, ...] = (),
) -> Method:
    return Method(name=name, returns=returns, fields=fields, requirements=requirements, legacy=legacy)


F = Field  # short alias: the table below reads like the reference

# Replying the pre-Bot API 7.0 way: gone from the reference, still accepted by Telegram and sent by aiogram.
_LEGACY_REPLY: Final = (F("reply_to_message_id", INTEGER), F("allow_sending_without_reply", BOOLEAN))

METHODS: Final[tuple[Method, ...]] = (
    _method("getMe", "User"),
    _method(
        "getUpdates",
        "Array of Update",
        F("offset", INTEGER),
        F("limit", INTEGER),
        F("timeout", INTEGER),
        F("allowed_updates", ("Array of String",)),
    ),
    _method(
        "setWebhook",
        "Boolean",
        F("url", STRING, required=True),
        F("certificate", ("InputFile",)),
        F("ip_address", STRING),
        F("max_connections", INTEGER),
        F("allowed_updates", ("Array of String",)),
        F("drop_pending_updates", BOOLEAN),
        F("secret_token", STRING),
    ),
    _method("deleteWebhook", "Boolean", F("drop_pending_updates", BOOLEAN)),
    _method("getWebhookInfo", "WebhookInfo"),
    _method(
        "setMyCommands",
        "Boolean",
        F("commands", ("Array of BotCommand",), required=True),
        F("scope", ("BotCommandScope",)),
        F("language_code", STRING),
    ),
    _method("getMyCommands", "Array of BotCommand", F("scope", ("BotCommandScope",)), F("language_code", STRING)),
    _method("deleteMyCommands", "Boolean", F("scope", ("BotCommandScope",)), F("language_code", STRING)),
    _method(
        "sendMessage",
        "Message",
        F("business_connection_id", STRING),
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER),
        F("direct_messages_topic_id", INTEGER),
        F("text", STRING, required=True),
        F("parse_mode", STRING),
        F("entities", ("Array of MessageEntity",)),
        F("link_preview_options", ("LinkPreviewOptions",)),
        F("disable_notification", BOOLEAN),
        F("protect_content", BOOLEAN),
        F("allow_paid_broadcast", BOOLEAN),
        F("message_effect_id", STRING),
        F("suggested_post_parameters", ("SuggestedPostParameters",)),
        F("reply_parameters", ("ReplyParameters",)),
        F("reply_markup", ANY_REPLY_MARKUP),
        legacy=_LEGACY_REPLY,
    ),
    _method(
        "sendDocument",
        "Message",
        F("business_connection_id", STRING),
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER),
        F("direct_messages_topic_id", INTEGER),
        F("document", INPUT_FILE_OR_STRING, required=True),
        F("thumbnail", INPUT_FILE_OR_STRING),
        F("caption", STRING),
        F("parse_mode", STRING),
        F("caption_entities", ("Array of MessageEntity",)),
        F("disable_content_type_detection", BOOLEAN),
        F("disable_notification", BOOLEAN),
        F("protect_content", BOOLEAN),
        F("allow_paid_broadcast", BOOLEAN),
        F("message_effect_id", STRING),
        F("suggested_post_parameters", ("SuggestedPostParameters",)),
        F("reply_parameters", ("ReplyParameters",)),
        F("reply_markup", ANY_REPLY_MARKUP),
        legacy=_LEGACY_REPLY,
    ),
    _method(
        "sendPhoto",
        "Message",
        F("business_connection_id", STRING),
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER),
        F("direct_messages_topic_id", INTEGER),
        F("photo", INPUT_FILE_OR_STRING, required=True),
        F("caption", STRING),
        F("parse_mode", STRING),
        F("caption_entities", ("Array of MessageEntity",)),
        F("show_caption_above_media", BOOLEAN),
        F("has_spoiler", BOOLEAN),
        F("disable_notification", BOOLEAN),
        F("protect_content", BOOLEAN),
        F("allow_paid_broadcast", BOOLEAN),
        F("message_effect_id", STRING),
        F("suggested_post_parameters", ("SuggestedPostParameters",)),
        F("reply_parameters", ("ReplyParameters",)),
        F("reply_markup", ANY_REPLY_MARKUP),
        legacy=_LEGACY_REPLY,
    ),
    _method(
        "copyMessage",
        "MessageId",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER),
        F("direct_messages_topic_id", INTEGER),
        F("from_chat_id", INTEGER_OR_STRING, required=True),
        F("message_id", INTEGER, required=True),
        F("video_start_timestamp", INTEGER),
        F("caption", STRING),
        F("parse_mode", STRING),
        F("caption_entities", ("Array of MessageEntity",)),
        F("show_caption_above_media", BOOLEAN),
        F("disable_notification", BOOLEAN),
        F("protect_content", BOOLEAN),
        F("allow_paid_broadcast", BOOLEAN),
        F("message_effect_id", STRING),
        F("suggested_post_parameters", ("SuggestedPostParameters",)),
        F("reply_parameters", ("ReplyParameters",)),
        F("reply_markup", ANY_REPLY_MARKUP),
        legacy=_LEGACY_REPLY,
    ),
    _method(
        "editMessageText",
        "Message",
        F("business_connection_id", STRING),
        F("chat_id", INTEGER_OR_STRING),
        F("message_id", INTEGER),
        F("inline_message_id", STRING),
        F("text", STRING),
        F("parse_mode", STRING),
        F("entities", ("Array of MessageEntity",)),
        F("link_preview_options", ("LinkPreviewOptions",)),
        F("rich_message", ("InputRichMessage",)),
        F("reply_markup", ("InlineKeyboardMarkup",)),
        requirements=(
            Requirement(("chat_id", "message_id"), unless="inline_message_id"),
            Requirement(("text",), unless="rich_message"),
        ),
    ),
    _method(
        "editMessageReplyMarkup",
        "Message",
        F("business_connection_id", STRING),
        F("chat_id", INTEGER_OR_STRING),
        F("message_id", INTEGER),
        F("inline_message_id", STRING),
        F("reply_markup", ("InlineKeyboardMarkup",)),
        requirements=(Requirement(("chat_id", "message_id"), unless="inline_message_id"),),
    ),
    _method(
        "answerCallbackQuery",
        "Boolean",
        F("callback_query_id", STRING, required=True),
        F("text", STRING),
        F("show_alert", BOOLEAN),
        F("url", STRING),
        F("cache_time", INTEGER),
    ),
    _method(
        "deleteMessage",
        "Boolean",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_id", INTEGER, required=True),
    ),
    _method(
        "deleteMessages",
        "Boolean",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_ids", ("Array of Integer",), required=True),
    ),
    _method(
        "sendChatAction",
        "Boolean",
        F("business_connection_id", STRING),
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER),
        F("action", STRING, required=True),
    ),
    _method(
        "createForumTopic",
        "ForumTopic",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("name", STRING, required=True),
        F("icon_color", INTEGER),
        F("icon_custom_emoji_id", STRING),
    ),
    _method(
        "editForumTopic",
        "Boolean",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER, required=True),
        F("name", STRING),
        F("icon_custom_emoji_id", STRING),
    ),
    _method(
        "closeForumTopic",
        "Boolean",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER, required=True),
    ),
    _method(
        "reopenForumTopic",
        "Boolean",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER, required=True),
    ),
    _method(
        "deleteForumTopic",
        "Boolean",
        F("chat_id", INTEGER_OR_STRING, required=True),
        F("message_thread_id", INTEGER, required=True),
    ),
    _method("leaveChat", "Boolean", F("chat_id", INTEGER_OR_STRING, required=True)),
)

_METHODS_BY_LOWER_NAME: Final = {m.name.lower(): m for m in METHODS}


def lookup_method(name: str) -> Method | None:
    """Find a method by name, case-insensitively as Telegram does (``/bot<token>/SENDMESSAGE`` works)."""
    return _METHODS_BY_LOWER_NAME.get(name.lower())


# Telegram's wording for a missing parameter where it is not simply "<field> is empty".
_MISSING_FIELD_DETAIL: Final = {
    "text": "message text is empty",
    "message_id": "message identifier is not specified",
    "callback_query_id": "query_id is empty",
    "action": "wrong parameter action in request",
    "from_chat_id": "from_chat_id is empty",
    "document": "there is no document in the request",
    "photo": "there is no photo in the request",
    "name": "title must be non-empty",  # createForumTopic; tdlib's words, lower-cased by the Bot API
    "message_thread_id": "invalid message thread identifier specified",
}


def _missing(name: str) -> BotAPIError:
    return BotAPIError.bad_request(_MISSING_FIELD_DETAIL.get(name, f"{name} is empty"))


def _is_missing(value: Any) -> bool:
    # aiogram drops falsy values from the form entirely; an explicit "" counts as absent, as in Telegram.
    return value is None or value == ""


_INTEGER_RE: Final = re.compile(r"[+-]?\d+")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def _coerce(spec: Field, value: Any) -> Any:
    """Turn one wire value into its Python shape according to the field's reference types."""
    if isinstance(value, UploadedFile):
        if "InputFile" in spec.types:
            return value
        raise BotAPIError.bad_request(f"invalid {spec.name} specified: expected a String, got a file")
    if spec.is_json:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                what = "reply keyboard markup" if spec.name == "reply_markup" else spec.name
                raise BotAPIError.bad_request(f"can't parse {what} JSON object") from None
        expects_array = any(t.startswith("Array of") for t in spec.types)
        if expects_array and not isinstance(value, list):
            raise BotAPIError.bad_request(f'field "{spec.name}" must be an Array')
        if not expects_array and not isinstance(value, dict):
            raise BotAPIError.bad_request(f'field "{spec.name}" must be an Object')
        return value
    if "Integer" in spec.types:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER_RE.fullmatch(value.strip()):
            return int(value)
        if "String" in spec.types and isinstance(value, str):
            return value
        raise BotAPIError.bad_request(f"invalid {spec.name} specified")
    if "Boolean" in spec.types:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise BotAPIError.bad_request(f"invalid {spec.name} specified: expected a Boolean")
    if "Float" in spec.types:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BotAPIError.bad_request(f"invalid {spec.name} specified") from None
    if isinstance(value, (dict, list)):
        raise BotAPIError.bad_request(f"invalid {spec.name} specified: expected a String")
    return str(value)


def coerce_params(method: Method, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate presence and decode types of a call's parameters, ignoring unknown ones.

    Telegram silently ignores parameters it does not know, so a typo in an optional parameter
    name is *not* an error; the recorded call shows what the fake actually understood.
    """
    params: dict[str, Any] = {}
    for spec in (*method.fields, *method.legacy):
        value = raw.get(spec.name)
        if _is_missing(value):
            if spec.required:
                raise _missing(spec.name)
            continue
        if "InputFile" in spec.types and isinstance(value, str) and value.startswith("attach://"):
            value = raw.get(value.removeprefix("attach://"))
            if not isinstance(value, UploadedFile):  # Telegram's wording for an attach:// to nowhere
                raise BotAPIError.bad_request(f"there is no {spec.name} in the request")
        params[spec.name] = _coerce(spec, value)
    for requirement in method.requirements:
        if requirement.unless in params:
            continue
        for name in requirement.fields:
            if name not in params:
                raise _missing(name)
    return params


# --------------------------------------------------------------------------------------------
# Updates and chat actions
# --------------------------------------------------------------------------------------------

UPDATE_TYPES: Final[tuple[str, ...]] = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "guest_message",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "managed_bot",
)
"""Every optional field of Update, in reference order; ``allowed_updates`` selects among them."""

DEFAULT_UPDATE_TYPES: Final = frozenset(UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
"""What an empty ``allowed_updates`` means: everything except the opt-in types."""

CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


# --------------------------------------------------------------------------------------------
# Text and entities
# --------------------------------------------------------------------------------------------

MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_ANSWER_LENGTH: Final = 200


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every entity offset and length in the Bot API."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class FormattedText:
    """Visible text plus its entities, i.e. what Telegram stores after parsing ``parse_mode``."""

    text: str
    entities: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class _OpenTag:
    tag: str
    entity: dict[str, Any] | None  # None for tags that do not produce their own entity
    start: int  # UTF-16 offset where the entity begins


# Tags Telegram accepts, mapped to the entity they produce. Attribute-dependent tags are handled
# in ``handle_starttag``.
_SIMPLE_TAGS: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_NAMED_CHARREFS: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class _TelegramHTMLParser(HTMLParser):
    """Parses Telegram's HTML dialect into visible text and entities, raising like Telegram does.

    ``html.parser`` is lenient by design; Telegram is not. The overrides below put back the
    strictness that matters in practice: unknown tags, mismatched or unclosed tags and stray
    ``<`` are all 400s in production, so they are 400s here.
    """

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self._source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._parts: list[str] = []
        self._offset = 0  # UTF-16 length of the visible text so far
        self._stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    # -- helpers -----------------------------------------------------------------------------

    def _byte_offset(self) -> int:
        line, column = self.getpos()
        char_offset = self._line_starts[line - 1] + column
        return len(self._source[:char_offset].encode("utf-8"))

    def _fail(self, detail: str) -> BotAPIError:
        return BotAPIError.bad_request(f"can't parse entities: {detail}")

    def _append(self, text: str) -> None:
        self._parts.append(text)
        self._offset += utf16_len(text)

    def _inside(self, tag: str) -> _OpenTag | None:
        return next((t for t in reversed(self._stack) if t.tag == tag), None)

    # -- HTMLParser callbacks ----------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        at = self._byte_offset()
        entity: dict[str, Any] | None
        if (self._inside("pre") and tag != "code") or self._inside("code"):
            raise self._fail(f'Unsupported start tag "{tag}" inside a code block at byte offset {at}')
        if tag == "a":
            href = attributes.get("href")
            if not href:
                raise self._fail(f'Can\'t find "href" attribute of tag "a" at byte offset {at}')
            entity = {"type": "text_link", "url": href}
        elif tag == "span":
            if attributes.get("class") != "tg-spoiler":
                raise self._fail(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
            entity = {"type": "spoiler"}
        elif tag == "blockquote":
            entity = {"type": "expandable_blockquote" if "expandable" in attributes else "blockquote"}
        elif tag == "tg-emoji":
            emoji_id = attributes.get("emoji-id")
            if not emoji_id:
                raise self._fail(f'Can\'t find "emoji-id" attribute of tag "tg-emoji" at byte offset {at}')
            entity = {"type": "custom_emoji", "custom_emoji_id": emoji_id}
        elif tag == "tg-time":
            unix = attributes.get("unix") or ""
            if not unix.isdigit():
                raise self._fail(f'Can\'t find "unix" attribute of tag "tg-time" at byte offset {at}')
            entity = {"type": "date_time", "unix_time": int(unix)}
            if attributes.get("format"):
                entity["date_time_format"] = attributes["format"]
        elif tag == "code" and (pre := self._inside("pre")) is not None:
            # <pre><code class="language-x"> is one "pre" entity with a language, not two entities.
            language = (attributes.get("class") or "").removeprefix("language-")
            if pre.entity is not None and language:
                pre.entity["language"] = language
            entity = None
        elif tag in _SIMPLE_TAGS:
            entity = {"type": _SIMPLE_TAGS[tag]}
        else:
            raise self._fail(f'Unsupported start tag "{tag}" at byte offset {at}')
        self._stack.append(_OpenTag(tag=tag, entity=entity, start=self._offset))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise self._fail(f'Unsupported start tag "{tag}/" at byte offset {self._byte_offset()}')

    def handle_endtag(self, tag: str) -> None:
        at = self._byte_offset()
        if not self._stack:
            raise self._fail(f'Unexpected end tag "{tag}" at byte offset {at}')
        top = self._stack.pop()
        if top.tag != tag:
            raise self._fail(f'Unmatched end tag at byte offset {at}, expected "</{top.tag}>", found "</{tag}>"')
        length = self._offset - top.start
        if top.entity is not None and length > 0:  # Telegram drops empty entities
            self.entities.append({**top.entity, "offset": top.start, "length": length})

    def handle_data(self, data: str) -> None:
        if "<" in data:
            at = self._byte_offset() + len(data[: data.index("<")].encode("utf-8"))
            raise self._fail(f"Unexpected end of name token at byte offset {at}")
        self._append(data)

    def handle_entityref(self, name: str) -> None:
        # Only four named entities are supported; anything else is kept verbatim, as Telegram does.
        self._append(_NAMED_CHARREFS.get(name, f"&{name};"))

    def handle_charref(self, name: str) -> None:
        try:
            code_point = int(name[1:], 16) if name[:1] in "xX" else int(name)
            self._append(chr(code_point))
        except (ValueError, OverflowError):
            raise self._fail(f"Invalid numeric HTML entity &#{name};") from None

    def handle_comment(self, data: str) -> None:
        raise self._fail(f'Unsupported start tag "!--" at byte offset {self._byte_offset()}')

    def handle_decl(self, decl: str) -> None:
        raise self._fail(f'Unsupported start tag "!{decl.split()[0]}" at byte offset {self._byte_offset()}')

    def handle_pi(self, data: str) -> None:
        raise self._fail(f'Unsupported start tag "?" at byte offset {self._byte_offset()}')

    def result(self) -> FormattedText:
        self.close()
        if self._stack:
            raise self._fail(f'Can\'t find end tag corresponding to start tag "{self._stack[-1].tag}"')
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return FormattedText(text="".join(self._parts), entities=tuple(entities))


def _parse_html(source: str) -> FormattedText:
    parser = _TelegramHTMLParser(source)
    parser.feed(source)
    return parser.result()


def _check_entities(entities: Iterable[Any], text: str) -> tuple[dict[str, Any], ...]:
    total = utf16_len(text)
    checked: list[dict[str, Any]] = []
    for entity in entities:
        if not isinstance(entity, dict) or not {"type", "offset", "length"} <= entity.keys():
            raise BotAPIError.bad_request("can't parse entities: entity must have type, offset and length")
        offset, length = entity["offset"], entity["length"]
        if not (isinstance(offset, int) and isinstance(length, int)) or offset < 0 or length <= 0:
            raise BotAPIError.bad_request("can't parse entities: invalid entity offset or length")
        if offset + length > total:
            raise BotAPIError.bad_request("can't parse entities: entity ends beyond the end of the text")
        checked.append(dict(entity))
    return tuple(checked)


def format_text(
    source: str,
    parse_mode: str | None,
    entities: list[Any] | None = None,
    *,
    max_length: int = MAX_TEXT_LENGTH,
    allow_empty: bool = False,
) -> FormattedText:
    """Apply explicit ``entities`` or ``parse_mode``, then Telegram's length limits, to a text.

    The limit applies to the *visible* text, so ``<b>`` tags and ``&amp;`` do not count, which
    is exactly the subtlety that makes a long localized message fail only in production.
    As in Telegram, explicit entities win over ``parse_mode``. ``allow_empty`` is for captions,
    which may be empty (the result then has empty text and no entities).

    Markdown and MarkdownV2 are accepted but not parsed: the text is stored verbatim. Use HTML
    if a test needs its formatting validated.
    """
    mode = (parse_mode or "").lower()
    if entities:
        formatted = FormattedText(source, _check_entities(entities, source))
    elif mode == "html":
        # Without "<" or "&" there is nothing to parse: skip the (slow) parser, e.g. in a broadcast.
        formatted = _parse_html(source) if "<" in source or "&" in source else FormattedText(source)
    elif mode in ("", "markdown", "markdownv2"):
        formatted = FormattedText(source)
    else:
        raise BotAPIError.bad_request(f"unsupported parse_mode {parse_mode!r}")
    if not formatted.text.strip():
        if allow_empty:
            return FormattedText("")
        raise BotAPIError.bad_request("message text is empty")
    if len(formatted.text) > max_length:
        raise BotAPIError.bad_request(
            "message is too long" if max_length == MAX_TEXT_LENGTH else "message caption is too long"
        )
    return formatted


def validate_callback_answer_text(text: str | None) -> None:
    """answerCallbackQuery's notification text is limited to 200 characters."""
    if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
        raise BotAPIError.bad_request("MESSAGE_TOO_LONG")


# --------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------

MAX_PHOTO_SIDES_SUM: Final = 10_000
MAX_PHOTO_ASPECT_RATIO: Final = 20
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC are not frames


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a PNG, JPEG, GIF or WebP picture, read from its header; None if it is none of those.

    This is all the decoding the fake does: what Telegram cannot read as a picture is a 400
    ``IMAGE_PROCESS_FAILED`` from sendPhoto, so bytes that are not an image fail here too.
    """
    size: tuple[int, int] | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        size = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif data.startswith(b"\xff\xd8"):
        size = _jpeg_size(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp_size(data)
    return size if size is not None and size[0] > 0 and size[1] > 0 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments up to the first frame header (SOFn), which holds the dimensions."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        if marker in _JPEG_SOF_MARKERS:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def validate_photo_dimensions(width: int, height: int) -> None:
    """sendPhoto's rule: width plus height at most 10000, and neither side more than 20 times the other."""
    if width + height > MAX_PHOTO_SIDES_SUM or max(width, height) > MAX_PHOTO_ASPECT_RATIO * min(width, height):
        raise BotAPIError.bad_request("PHOTO_INVALID_DIMENSIONS")


def png_image(width: int = 64, height: int = 48) -> bytes:
    """A valid grey PNG of that size: the smallest honest picture a test can upload with sendPhoto."""
    if width < 1 or height < 1:
        raise ValueError("a PNG needs at least one pixel each way")

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    pixels = zlib.compress((b"\x00" + b"\x80" * width) * height)  # filter byte 0, then mid-grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------------------------
# Keyboards
# --------------------------------------------------------------------------------------------

MAX_CALLBACK_DATA_BYTES: Final = 64

# Exactly one of these must accompany an InlineKeyboardButton's text.
_INLINE_BUTTON_ACTIONS: Final = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_URL_SCHEMES: Final = ("http://", "https://", "tg://")


def _validate_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise BotAPIError.bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise BotAPIError.bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    if not text.strip():
        raise BotAPIError.bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _INLINE_BUTTON_ACTIONS if name in button and button[name] is not None]
    if not actions:
        raise BotAPIError.bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if len(actions) > 1:
        raise BotAPIError.bad_request(
            f"can't parse inline keyboard button: exactly one optional field must be used, got {', '.join(actions)}"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise BotAPIError.bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES):
            raise BotAPIError.bad_request("BUTTON_URL_INVALID")


def _rows(markup: Mapping[str, Any], key: str) -> list[list[Any]]:
    rows = markup[key]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BotAPIError.bad_request(f'Field "{key}" of the reply markup must be an Array of Arrays')
    return rows


def validate_reply_markup(markup: Mapping[str, Any], *, inline_only: bool = False) -> None:
    """Check a decoded ``reply_markup`` the way Telegram does before accepting a message.

    ``inline_only`` is for the edit methods, which accept nothing but an inline keyboard.
    """
    if "inline_keyboard" in markup:
        for row in _rows(markup, "inline_keyboard"):
            for button in row:
                _validate_inline_button(button)
        return
    if inline_only:
        raise BotAPIError.bad_request("can't parse inline keyboard markup: an inline keyboard is expected")
    if "keyboard" in markup:
        for row in _rows(markup, "keyboard"):
            for button in row:
                label = button.get("text") if isinstance(button, dict) else button
                if not isinstance(label, str) or not label.strip():
                    raise BotAPIError.bad_request("BUTTON_TEXT_INVALID")
        return
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return
    raise BotAPIError.bad_request("can't parse reply keyboard markup JSON object")


# --------------------------------------------------------------------------------------------
# Forum topics
# --------------------------------------------------------------------------------------------

FORUM_TOPIC_ICON_COLORS: Final = (0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F)
"""The only topic icon colours createForumTopic accepts; the first is what Telegram picks by default."""
MAX_TOPIC_NAME_LENGTH: Final = 128
_CONTROL_CHARACTERS_RE: Final = re.compile(r"[\x00-\x1f\x7f]+")


def clean_topic_name(name: str) -> str:
    """A topic name as Telegram stores it: control characters blanked, trimmed, cut to 128 characters.

    Like tdlib (``clean_name``), an over-long name is silently truncated rather than refused;
    a name that is empty after cleaning is a 400.
    """
    cleaned = _CONTROL_CHARACTERS_RE.sub(" ", name).strip()[:MAX_TOPIC_NAME_LENGTH].rstrip()
    if not cleaned:
        raise BotAPIError.bad_request("title must be non-empty")
    return cleaned


def validate_icon_color(color: int | None) -> int:
    """createForumTopic's ``icon_color``: one of six documented RGB values, defaulting to the first."""
    if color is None:
        return FORUM_TOPIC_ICON_COLORS[0]
    if color not in FORUM_TOPIC_ICON_COLORS:
        raise BotAPIError.bad_request("invalid icon color specified")
    return color


# --------------------------------------------------------------------------------------------
# Bot commands
# --------------------------------------------------------------------------------------------

MAX_COMMANDS: Final = 100
_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_CODE_RE: Final = re.compile(r"[a-z]{2}")
_SCOPE_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "default": (),
    "all_private_chats": (),
    "all_group_chats": (),
    "all_chat_administrators": (),
    "chat": ("chat_id",),
    "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}


def validate_commands(commands: list[Any]) -> list[dict[str, str]]:
    """Validate setMyCommands' list and return it normalized to ``{"command", "description"}``."""
    if len(commands) > MAX_COMMANDS:
        raise BotAPIError.bad_request("BOT_COMMANDS_TOO_MUCH")
    normalized: list[dict[str, str]] = []
    for item in commands:
        if not isinstance(item, dict):
            raise BotAPIError.bad_request("can't parse BotCommand: BotCommand must be an Object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND_RE.fullmatch(command):
            raise BotAPIError.bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256 or len(description) > 256:
            raise BotAPIError.bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        normalized.append({"command": command, "description": description})
    return normalized


@dataclass(frozen=True, slots=True)
class CommandScopeKey:
    """Where a command list is stored: Telegram keeps one list per scope *and* language."""

    scope: tuple[Any, ...] = ("default",)
    language_code: str = ""


def validate_scope(scope: Mapping[str, Any] | None, language_code: str | None) -> CommandScopeKey:
    """Validate a BotCommandScope's shape and a language code, returning the key their commands live under.

    A ``chat_id`` is kept as an int (``123`` and ``"123"`` are the same chat) or an ``@username``; a ``user_id``
    must be an int. Whether that chat exists, and may have that scope, is the server's check (it knows the chats).
    """
    language = language_code or ""
    if language and not _LANGUAGE_CODE_RE.fullmatch(language):
        raise BotAPIError.bad_request("LANG_CODE_INVALID")
    if scope is None:
        return CommandScopeKey(language_code=language)
    scope_type = scope.get("type")
    if scope_type not in _SCOPE_KEYS:
        raise BotAPIError.bad_request("can't parse BotCommandScope: unsupported scope type")
    values: list[Any] = [scope_type]
    for key in _SCOPE_KEYS[scope_type]:
        if key not in scope:
            raise BotAPIError.bad_request(f"{key} is empty")
        values.append(_scope_id(key, scope[key]))
    return CommandScopeKey(scope=tuple(values), language_code=language)


def _scope_id(key: str, value: Any) -> int | str:
    """A scope's ``chat_id`` (Integer or String: an id, or ``@username``) or ``user_id`` (Integer)."""
    if isinstance(value, bool):
        raise BotAPIError.bad_request(f"invalid {key} specified")
    if isinstance(value, int):
        return value
    if key == "chat_id" and isinstance(value, str):
        if re.fullmatch(r"-?\d+", value):
            return int(value)
        if value.startswith("@") and len(value) > 1:
            return value
    raise BotAPIError.bad_request(f"invalid {key} specified")
