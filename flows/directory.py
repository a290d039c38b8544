"""The directory of sponsorship organisations as data: parse, validate and write it back, in YAML or CSV.

NGO staff keep the directory in a file (YAML, or a spreadsheet saved as CSV) and import it from the command
line. A wrong cell must stop the import with a message that names the row and the field, never half-load a
directory or quietly drop an organisation, so parsing is all or nothing. Writing is the exact inverse of
reading (``parse_directory(dump_directory(orgs, f), f) == orgs``), so an export can be edited and imported again.
In CSV, a text cell a spreadsheet would run as a formula is written after a single quote (a phone: ``'+52 …``),
and reading takes one leading quote off any text cell.

Row numbers in errors:

- CSV: the row as a spreadsheet shows it. The header is row 1, so the first organisation is row 2; blank rows
  count but are skipped; a cell with a line break in it does not shift the numbering (rows are records, not lines).
- YAML: the 1-based position in the ``organisations`` list.
- Row 0 means the file as a whole (not YAML, wrong ``schema``, no ``organisations`` list).

A problem is a code and its values (``Problem("website", {"value": "'ftp://x'"})``), never a sentence: the bot
says it in the admin's language from the catalogs' ``dir.problem.<code>`` texts.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.plaintext import FORMULA_STARTS, format_characters, guard_cell, unguard_cell

SCHEMA_VERSION = 1

Offer = Literal["find_supporter", "act_as_supporter", "legal_advice", "travel_help"]
Language = Literal["es", "ht", "en"]
#: The questionnaires' nationality options an organisation can serve (the CHNV rules add Cubans, Haitians and
#: Nicaraguans), "family" for immediate family travelling with one of them, or "any".
Nationality = Literal["venezuelan", "cuban", "haitian", "nicaraguan", "family", "any"]
Region = Literal["mexico", "panama", "elsewhere", "any"]
Format = Literal["yaml", "csv"]

OFFERS: tuple[Offer, ...] = ("find_supporter", "act_as_supporter", "legal_advice", "travel_help")
ANY = "any"
#: The contact channels, of which an organisation needs at least one; named together in that error.
CHANNELS = ("intake_chat_id", "website", "phone", "email")
CHANNELS_FIELD = "/".join(CHANNELS)
#: Between the items of a list cell in CSV: ``es;en``.
LIST_SEPARATOR = ";"

_INT64 = 2**63
#: Telegram user ids are positive; kept within a signed 64-bit column.
UserId = Annotated[StrictInt, Field(gt=0, lt=_INT64)]

_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
_PHONE = re.compile(r"\+[0-9](?:[ -]?[0-9])*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_WEBSITE = re.compile(r"https://[^\s/?#]+\S*")
#: Control characters, surrogates and line/paragraph separators: never part of a name on one line.
_BAD_NAME_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


ProblemCode = Literal[
    # one value
    "invisible",
    "slug",
    "spaces",
    "one_line",
    "formula",
    "website",
    "phone",
    "email",
    "repeated",
    "any_alone",
    "required",
    "unknown_field",
    "choice",
    "empty",
    "too_long",
    "below",
    "above",
    "at_least",
    "at_most",
    "whole_number",
    "yes_no",
    "text",
    "list",
    "invalid",
    # the organisation as a whole
    "no_channel",
    "no_members",
    "duplicate_id",
    # the file
    "yaml",
    "not_mapping",
    "schema",
    "top_level_key",
    "not_list",
    "not_organisation",
    "cells",
    "csv",
    "no_header",
    "semicolons",
    "unknown_column",
    "column_twice",
    "column_missing",
]
#: Every problem the directory can report; each has a ``dir.problem.<code>`` text in every catalog.
PROBLEMS: tuple[ProblemCode, ...] = get_args(ProblemCode)


@dataclass(frozen=True)
class Problem:
    """What is wrong, as a code and the values its text names (already quoted for display)."""

    code: ProblemCode
    values: Mapping[str, str] = dataclasses.field(default_factory=dict)


class DirectoryError(ValueError):
    """The directory file is wrong: the row and the field of the first problem, and what it is."""

    def __init__(self, row: int, field: str | None, problem: Problem) -> None:
        self.row, self.field, self.problem = row, field, problem
        where = "file" if row == 0 else f"row {row}"
        if field is not None:
            where += f", field '{field}'"
        # For tracebacks and tests; people read it through the catalogs (bot.admin.directory_problem).
        super().__init__(f"{where}: {problem.code} {dict(problem.values)}")


class _Invalid(ValueError):
    """Raised in a validator; pydantic keeps it in the error's context. `field` blames one field for a check that
    spans several (pydantic reports such checks without one)."""

    def __init__(self, code: ProblemCode, *, field: str | None = None, **values: object) -> None:
        self.problem = Problem(code, {k: str(v) for k, v in values.items()})
        self.field = field
        super().__init__(code)


class Organisation(BaseModel):
    """One organisation that helps people with sponsorship, and how its staff are reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StrictStr
    name: StrictStr = Field(min_length=1, max_length=80)
    offers: tuple[Offer, ...] = Field(min_length=1)
    languages: tuple[Language, ...] = Field(min_length=1)
    #: Whom they serve: nationals of the processes, their immediate family, or anyone.
    nationalities: tuple[Nationality, ...] = Field(min_length=1)
    #: Where the person is now; the ids are the bot's answers to "Where are you now?".
    regions: tuple[Region, ...] = Field(min_length=1)
    #: A Telegram group where staff receive referrals (group ids are negative).
    intake_chat_id: StrictInt | None = Field(default=None, lt=0, gt=-_INT64)
    website: StrictStr | None = Field(default=None, max_length=200)
    phone: StrictStr | None = None
    email: StrictStr | None = Field(default=None, max_length=254)
    #: Telegram users allowed to accept or decline referrals in the intake chat.
    members: tuple[UserId, ...] = ()
    weekly_capacity: StrictInt = Field(ge=0, le=10_000)
    active: StrictBool = True
    verified: StrictBool = False

    @field_validator("id", "name", "website", "phone", "email")
    @classmethod
    def _visible(cls, value: str | None) -> str | None:
        """Checked first: an RTL override or a zero-width character can make a name or an address read as another."""
        hidden = format_characters(value or "")
        if hidden:
            raise _Invalid("invisible", found=", ".join(hidden))
        return value

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise _Invalid("slug", value=_shown(value))
        return value

    @field_validator("name")
    @classmethod
    def _one_clean_line(cls, value: str) -> str:
        """Names are shown to migrants in chat and opened by staff in spreadsheets: one tidy line, no formula."""
        if value != value.strip():
            raise _Invalid("spaces")
        if any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in value):
            raise _Invalid("one_line")
        if value.startswith(FORMULA_STARTS):
            raise _Invalid("formula")
        return value

    @field_validator("website")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not _WEBSITE.fullmatch(value):
            raise _Invalid("website", value=_shown(value))
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None:
            digits = sum(c.isdigit() for c in value)
            if not _PHONE.fullmatch(value) or not 7 <= digits <= 15:
                raise _Invalid("phone", value=_shown(value))
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise _Invalid("email", value=_shown(value))
        return value

    @field_validator("offers", "languages", "nationalities", "regions", "members")
    @classmethod
    def _no_repeats(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        repeated = next((item for i, item in enumerate(value) if item in value[:i]), None)
        if repeated is not None:
            raise _Invalid("repeated", value=_shown(repeated))
        return value

    @field_validator("nationalities", "regions")
    @classmethod
    def _any_alone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """`any` next to specific values is a contradiction a typo may hide; it must stand alone."""
        if ANY in value and len(value) > 1:
            raise _Invalid("any_alone")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Organisation:
        """A referral nobody can deliver, or an intake chat where nobody may answer, helps no one."""
        if all(getattr(self, channel) is None for channel in CHANNELS):
            raise _Invalid("no_channel", field=CHANNELS_FIELD)
        if self.intake_chat_id is not None and not self.members:
            raise _Invalid("no_members", field="members")
        return self


FIELDS: tuple[str, ...] = tuple(Organisation.model_fields)

# --------------------------------------------------------------------------------------------------- parse


def parse_directory(text: str, fmt: Format) -> tuple[Organisation, ...]:
    """Every organisation in `text`, or a DirectoryError about the first problem (nothing partial)."""
    rows = _yaml_rows(text) if fmt == "yaml" else _csv_rows(text) if fmt == "csv" else None
    if rows is None:
        raise ValueError(f"unknown directory format {fmt!r}: use 'yaml' or 'csv'")
    orgs: list[Organisation] = []
    first_row: dict[str, int] = {}
    for row, raw in rows:
        org = _validate(row, raw)
        if org.id in first_row:
            raise DirectoryError(
                row, "id", Problem("duplicate_id", {"value": _shown(org.id), "row": str(first_row[org.id])})
            )
        first_row[org.id] = row
        orgs.append(org)
    return tuple(orgs)


def _validate(row: int, raw: Mapping[str, Any]) -> Organisation:
    try:
        return Organisation.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        context = first.get("ctx", {})
        ours = context.get("error")
        if isinstance(ours, _Invalid):
            raise DirectoryError(row, ours.field or field, ours.problem) from None
        raise DirectoryError(row, field, _pydantic_problem(first["type"], context, first.get("input"))) from None


#: Pydantic's error types, as the directory's problems, with the context value each one names.
_PYDANTIC: Mapping[str, tuple[ProblemCode, str | None]] = {
    "missing": ("required", None),
    "extra_forbidden": ("unknown_field", None),
    "literal_error": ("choice", "expected"),
    "too_short": ("empty", None),
    "string_too_short": ("empty", None),
    "too_long": ("too_long", "max_length"),
    "string_too_long": ("too_long", "max_length"),
    "less_than": ("below", "lt"),
    "greater_than": ("above", "gt"),
    "greater_than_equal": ("at_least", "ge"),
    "less_than_equal": ("at_most", "le"),
    "int_type": ("whole_number", None),
    "int_parsing": ("whole_number", None),
    "int_from_float": ("whole_number", None),
    "bool_type": ("yes_no", None),
    "bool_parsing": ("yes_no", None),
    "string_type": ("text", None),
    "tuple_type": ("list", None),
}


def _pydantic_problem(kind: str, context: Mapping[str, Any], found: object) -> Problem:
    code, named = _PYDANTIC.get(kind, ("invalid", None))
    values = {"value": _shown(found)}
    if named is not None:
        values["limit"] = str(context.get(named, ""))
    return Problem(code, values)


def _shown(value: object, limit: int = 60) -> str:
    """The offending value, cut short: an error message is read in a terminal, not scrolled."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _yaml_rows(text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = str(where.line + 1) if where is not None else "?"
        raise DirectoryError(0, None, Problem("yaml", {"line": line})) from None
    if not isinstance(raw, dict):
        raise DirectoryError(0, None, Problem("not_mapping"))
    if raw.get("schema") != SCHEMA_VERSION:
        raise DirectoryError(
            0, "schema", Problem("schema", {"expected": str(SCHEMA_VERSION), "value": _shown(raw.get("schema"))})
        )
    unknown = sorted(str(k) for k in raw if k not in ("schema", "organisations"))
    if unknown:
        raise DirectoryError(0, unknown[0], Problem("top_level_key"))
    entries = raw.get("organisations")
    if not isinstance(entries, list):
        raise DirectoryError(0, "organisations", Problem("not_list"))
    for row, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise DirectoryError(row, None, Problem("not_organisation"))
        yield row, entry


def _csv_rows(text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Data rows numbered as a spreadsheet shows them (header = row 1), cells typed for the model."""
    records = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    row = 1  # the row being read, also when the CSV syntax itself is broken
    try:
        header = [cell.strip() for cell in next(records, [])]
        _check_header(header)
        row = 2
        for cells in records:
            if any(cell.strip() for cell in cells):
                if len(cells) != len(header):
                    counts = {"count": str(len(cells)), "expected": str(len(header))}
                    raise DirectoryError(row, None, Problem("cells", counts))
                yield row, _typed_cells(row, zip(header, cells, strict=True))
            row += 1
    except csv.Error as exc:
        raise DirectoryError(row, None, Problem("csv", {"detail": str(exc)[:80]})) from None


def _check_header(header: Sequence[str]) -> None:
    if not any(header):
        raise DirectoryError(1, None, Problem("no_header", {"columns": ", ".join(FIELDS)}))
    if len(header) == 1 and LIST_SEPARATOR in header[0]:
        raise DirectoryError(1, None, Problem("semicolons"))
    for i, column in enumerate(header):
        if column not in FIELDS:
            raise DirectoryError(1, column or None, Problem("unknown_column", {"columns": ", ".join(FIELDS)}))
        if column in header[:i]:
            raise DirectoryError(1, column, Problem("column_twice"))
    missing = [f for f, info in Organisation.model_fields.items() if info.is_required() and f not in header]
    if missing:
        raise DirectoryError(1, missing[0], Problem("column_missing"))


def _typed_cells(row: int, cells: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Cells as the model's types; an empty cell is left out, so the field takes its default (None, (), …)."""
    typed: dict[str, Any] = {}
    for field, cell in cells:
        kind = _CSV_KINDS[field]
        value = cell.strip()
        if kind in _TEXT_KINDS:
            value = unguard_cell(value)
        if kind in ("strs", "ints"):
            items = [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
            if items:
                typed[field] = [_int(row, field, i) for i in items] if kind == "ints" else items
        elif value and kind == "int":
            typed[field] = _int(row, field, value)
        elif value and kind == "bool":
            typed[field] = _bool(row, field, value)
        elif value:
            typed[field] = value
    return typed


def _int(row: int, field: str, text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise DirectoryError(row, field, Problem("whole_number", {"value": _shown(text)}))
    return int(text)


_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _bool(row: int, field: str, text: str) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise DirectoryError(row, field, Problem("yes_no", {"value": _shown(text)})) from None


CsvKind = Literal["str", "strs", "int", "ints", "bool"]
#: How each column's cells are read and written; a test keeps this in step with the model's fields.
_CSV_KINDS: Mapping[str, CsvKind] = {
    "id": "str",
    "name": "str",
    "offers": "strs",
    "languages": "strs",
    "nationalities": "strs",
    "regions": "strs",
    "intake_chat_id": "int",
    "website": "str",
    "phone": "str",
    "email": "str",
    "members": "ints",
    "weekly_capacity": "int",
    "active": "bool",
    "verified": "bool",
}

#: The columns holding text, which a spreadsheet could run as a formula; numbers and booleans it cannot.
_TEXT_KINDS: frozenset[CsvKind] = frozenset({"str", "strs"})

# --------------------------------------------------------------------------------------------------- dump


def dump_directory(orgs: Iterable[Organisation], fmt: Format) -> str:
    """The organisations as a file `parse_directory` reads back equal, in the fields' order."""
    if fmt == "yaml":
        return _dump_yaml(orgs)
    if fmt == "csv":
        return _dump_csv(orgs)
    raise ValueError(f"unknown directory format {fmt!r}: use 'yaml' or 'csv'")


def _dump_yaml(orgs: Iterable[Organisation]) -> str:
    entries = [{k: v for k, v in org.model_dump(mode="json").items() if v is not None} for org in orgs]
    document = {"schema": SCHEMA_VERSION, "organisations": entries}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _dump_csv(orgs: Iterable[Organisation]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for org in orgs:
        writer.writerow([_csv_cell(field, getattr(org, field)) for field in FIELDS])
    return out.getvalue()


def _csv_cell(field: str, value: object) -> str:
    """A text cell is guarded against formulas (a phone is written '+52 …); reading takes the quote off again."""
    cell = _cell(value)
    return guard_cell(cell) if _CSV_KINDS[field] in _TEXT_KINDS else cell


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)
