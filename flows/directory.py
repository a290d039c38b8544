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
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

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


class DirectoryError(ValueError):
    """The directory file is wrong; the message names the row and the field of the first problem."""

    def __init__(self, row: int, field: str | None, problem: str) -> None:
        self.row, self.field, self.problem = row, field, problem
        where = "file" if row == 0 else f"row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")


class _FieldProblem(ValueError):
    """A check spanning several fields, carrying the field to blame (pydantic reports such checks without one)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(problem)


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
            raise ValueError(f"must not contain invisible formatting characters, found {', '.join(hidden)}")
        return value

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a slug: 2-40 lowercase letters, digits or dashes, not starting with -")
        return value

    @field_validator("name")
    @classmethod
    def _one_clean_line(cls, value: str) -> str:
        """Names are shown to migrants in chat and opened by staff in spreadsheets: one tidy line, no formula."""
        if value != value.strip():
            raise ValueError("must not start or end with spaces")
        if any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in value):
            raise ValueError("must be one line without control characters")
        if value.startswith(FORMULA_STARTS):
            raise ValueError("must not start with = + - or @ (a spreadsheet would run it as a formula)")
        return value

    @field_validator("website")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not _WEBSITE.fullmatch(value):
            raise ValueError(f"must start with https:// and contain no spaces, found {value!r}")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None:
            digits = sum(c.isdigit() for c in value)
            if not _PHONE.fullmatch(value) or not 7 <= digits <= 15:
                raise ValueError(f"write it as + and 7-15 digits, spaces or dashes between them, found {value!r}")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("offers", "languages", "nationalities", "regions", "members")
    @classmethod
    def _no_repeats(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        repeated = next((item for i, item in enumerate(value) if item in value[:i]), None)
        if repeated is not None:
            raise ValueError(f"{repeated!r} is listed twice")
        return value

    @field_validator("nationalities", "regions")
    @classmethod
    def _any_alone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """`any` next to specific values is a contradiction a typo may hide; it must stand alone."""
        if ANY in value and len(value) > 1:
            raise ValueError("'any' already covers every value; list it alone")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Organisation:
        """A referral nobody can deliver, or an intake chat where nobody may answer, helps no one."""
        if all(getattr(self, channel) is None for channel in CHANNELS):
            raise _FieldProblem(CHANNELS_FIELD, "give at least one way to reach the organisation")
        if self.intake_chat_id is not None and not self.members:
            raise _FieldProblem("members", "list who may accept referrals when intake_chat_id is set")
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
            raise DirectoryError(row, "id", f"'{org.id}' is already used by row {first_row[org.id]}")
        first_row[org.id] = row
        orgs.append(org)
    return tuple(orgs)


def _validate(row: int, raw: Mapping[str, Any]) -> Organisation:
    try:
        return Organisation.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        problem = first["msg"].removeprefix("Value error, ")
        field: str | None = None
        if first["loc"]:
            field = str(first["loc"][0])
            if first["type"] not in ("value_error", "missing", "extra_forbidden"):
                problem += f", found {_shown(first['input'])}"
        else:
            blamed = first.get("ctx", {}).get("error")
            if isinstance(blamed, _FieldProblem):
                field = blamed.field
        raise DirectoryError(row, field, problem) from None


def _shown(value: object, limit: int = 60) -> str:
    """The offending value, cut short: an error message is read in a terminal, not scrolled."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _yaml_rows(text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DirectoryError(0, None, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise DirectoryError(0, None, "expected a mapping with `schema: 1` and `organisations:`")
    if raw.get("schema") != SCHEMA_VERSION:
        raise DirectoryError(0, "schema", f"must be {SCHEMA_VERSION}, found {raw.get('schema')!r}")
    unknown = sorted(str(k) for k in raw if k not in ("schema", "organisations"))
    if unknown:
        raise DirectoryError(0, unknown[0], "unknown top-level key; expected only schema and organisations")
    entries = raw.get("organisations")
    if not isinstance(entries, list):
        raise DirectoryError(0, "organisations", "expected a list of organisations")
    for row, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise DirectoryError(row, None, "expected the fields of one organisation (a mapping)")
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
                    raise DirectoryError(row, None, f"has {len(cells)} cells, the header has {len(header)}")
                yield row, _typed_cells(row, zip(header, cells, strict=True))
            row += 1
    except csv.Error as exc:
        raise DirectoryError(row, None, f"not valid CSV: {exc}") from None


def _check_header(header: Sequence[str]) -> None:
    if not any(header):
        raise DirectoryError(1, None, f"no header row; expected the columns {', '.join(FIELDS)}")
    if len(header) == 1 and LIST_SEPARATOR in header[0]:
        raise DirectoryError(1, None, "columns are separated by ';': save the sheet as comma-separated CSV")
    for i, column in enumerate(header):
        if column not in FIELDS:
            raise DirectoryError(1, column or None, f"unknown column; the columns are {', '.join(FIELDS)}")
        if column in header[:i]:
            raise DirectoryError(1, column, "column appears twice")
    missing = [f for f, info in Organisation.model_fields.items() if info.is_required() and f not in header]
    if missing:
        raise DirectoryError(1, missing[0], "required column is missing")


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
        raise DirectoryError(row, field, f"expected a whole number, found {text!r}")
    return int(text)


_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _bool(row: int, field: str, text: str) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise DirectoryError(row, field, f"expected true/false, yes/no or 1/0, found {text!r}") from None


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
