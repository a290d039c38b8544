"""The organisation directory: the examples load, exports import back equal, errors name row and field."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.admin import directory_problem
from bot.i18n import Translator
from flows.directory import (
    _CSV_KINDS,
    CHANNELS_FIELD,
    FIELDS,
    PROBLEMS,
    DirectoryError,
    Format,
    Organisation,
    dump_directory,
    parse_directory,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "directory"
HEADER = ",".join(FIELDS)
TR = Translator.load()


def example(fmt: Format) -> tuple[Organisation, ...]:
    return parse_directory((EXAMPLES / f"example.{fmt}").read_text(encoding="utf-8"), fmt)


def valid(**changes: Any) -> dict[str, Any]:
    """The fields of one valid organisation, as YAML would give them, with `changes` applied (None drops a key)."""
    fields: dict[str, Any] = {
        "id": "red-prueba",
        "name": "Red de Prueba (ficticia)",
        "offers": ["find_supporter"],
        "languages": ["es"],
        "nationalities": ["venezuelan"],
        "regions": ["any"],
        "intake_chat_id": -1001000000009,
        "members": [111111111],
        "weekly_capacity": 5,
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def yaml_text(*entries: dict[str, Any], schema: object = 1) -> str:
    return yaml.safe_dump({"schema": schema, "organisations": list(entries)}, sort_keys=False)


def csv_text(*rows: dict[str, str]) -> str:
    """A CSV with every column; cells not given are empty."""
    lines = [HEADER, *(",".join(row.get(f, "") for f in FIELDS) for row in rows)]
    return "\n".join(lines) + "\n"


def csv_row(**changes: str) -> dict[str, str]:
    row = {
        "id": "red-prueba",
        "name": "Red de Prueba (ficticia)",
        "offers": "find_supporter;legal_advice",
        "languages": "es;en",
        "nationalities": "venezuelan",
        "regions": "mexico",
        "email": "red@example.org",
        "weekly_capacity": "5",
        "active": "yes",
    }
    row.update(changes)
    return row


def refused(text: str, fmt: Format) -> DirectoryError:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(text, fmt)
    return caught.value


def said(error: DirectoryError, lang: str = "en") -> str:
    """The error as an admin reads it."""
    return directory_problem(TR, lang, error)


# --------------------------------------------------------------------------------------------------- examples


def test_example_files_load_and_agree() -> None:
    """The YAML and CSV examples hold the same five organisations."""
    from_yaml = example("yaml")
    assert len(from_yaml) == 5
    assert example("csv") == from_yaml


def test_examples_are_fictional_and_varied() -> None:
    """The examples use only reserved contact details and show each case worth trying (Creole, unverified, …)."""
    orgs = example("yaml")
    for org in orgs:
        assert "ficti" in org.name or "fiktif" in org.name
        assert org.website is None or org.website.startswith("https://example.org/")
        assert org.email is None or org.email.endswith("@example.org")
        assert org.phone is None or org.phone.startswith("+1 555 01")
    assert any("ht" in o.languages for o in orgs)
    assert any(not o.verified for o in orgs)
    assert any(not o.active for o in orgs)
    assert any(o.weekly_capacity == 1 for o in orgs)
    assert {offer for o in orgs for offer in o.offers} == {
        "find_supporter",
        "act_as_supporter",
        "legal_advice",
        "travel_help",
    }


def test_example_csv_is_what_export_writes() -> None:
    """The example CSV is exactly the export of the example YAML, so the two cannot drift apart."""
    assert dump_directory(example("yaml"), "csv") == (EXAMPLES / "example.csv").read_text(encoding="utf-8")


def test_csv_columns_cover_the_model() -> None:
    """Every field of an organisation has a CSV column type, and no column is left over."""
    assert set(_CSV_KINDS) == set(FIELDS)


# --------------------------------------------------------------------------------------------------- round trip

slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{1,39}", fullmatch=True)
names = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=80,
).filter(lambda s: s == s.strip() and not s.startswith(("=", "+", "-", "@")))


def subset(*values: str) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), min_size=1, unique=True).map(tuple)


@st.composite
def phones(draw: st.DrawFn) -> str:
    digits = draw(st.text("0123456789", min_size=7, max_size=15))
    separators = draw(st.lists(st.sampled_from(["", " ", "-"]), min_size=len(digits), max_size=len(digits)))
    return "+" + digits[0] + "".join(sep + d for sep, d in zip(separators[1:], digits[1:], strict=True))


websites = st.from_regex(r"https://[a-z0-9.-]{1,20}(/[A-Za-z0-9_~%/.,;\"'=-]{0,30})?", fullmatch=True)
emails = st.from_regex(r"[a-z0-9._+-]{1,12}@[a-z0-9-]{1,12}\.[a-z]{2,6}", fullmatch=True)
user_ids = st.integers(min_value=1, max_value=2**63 - 1)


@st.composite
def organisations(draw: st.DrawFn) -> Organisation:
    chat = draw(st.none() | st.integers(min_value=-(2**63) + 1, max_value=-1))
    website, phone, email = draw(st.none() | websites), draw(st.none() | phones()), draw(st.none() | emails)
    if chat is None and website is phone is email is None:
        email = draw(emails)
    members = draw(st.lists(user_ids, min_size=1 if chat is not None else 0, max_size=4, unique=True))
    return Organisation(
        id=draw(slugs),
        name=draw(names),
        offers=draw(subset("find_supporter", "act_as_supporter", "legal_advice", "travel_help")),
        languages=draw(subset("es", "ht", "en")),
        nationalities=draw(st.just(("any",)) | subset("venezuelan", "family")),
        regions=draw(st.just(("any",)) | subset("mexico", "panama", "elsewhere")),
        intake_chat_id=chat,
        website=website,
        phone=phone,
        email=email,
        members=tuple(members),
        weekly_capacity=draw(st.integers(min_value=0, max_value=10_000)),
        active=draw(st.booleans()),
        verified=draw(st.booleans()),
    )


directories = st.lists(organisations(), max_size=5, unique_by=lambda o: o.id).map(tuple)


@settings(max_examples=200, deadline=None)
@given(orgs=directories)
def test_yaml_round_trip(orgs: tuple[Organisation, ...]) -> None:
    """Any directory exported as YAML imports back equal."""
    assert parse_directory(dump_directory(orgs, "yaml"), "yaml") == orgs


@settings(max_examples=200, deadline=None)
@given(orgs=directories)
def test_csv_round_trip(orgs: tuple[Organisation, ...]) -> None:
    """Any directory exported as CSV imports back equal."""
    assert parse_directory(dump_directory(orgs, "csv"), "csv") == orgs


@settings(max_examples=50, deadline=None)
@given(orgs=directories)
def test_yaml_and_csv_exports_agree(orgs: tuple[Organisation, ...]) -> None:
    """Exporting to CSV and back then to YAML gives what exporting to YAML directly gives."""
    via_csv = parse_directory(dump_directory(orgs, "csv"), "csv")
    assert dump_directory(via_csv, "yaml") == dump_directory(orgs, "yaml")


@settings(max_examples=100, deadline=None)
@given(orgs=directories)
def test_csv_export_never_starts_a_text_cell_as_a_formula(orgs: tuple[Organisation, ...]) -> None:
    """In an exported CSV no text cell (name, website, phone, email, lists) starts with = + - @, a tab or a CR."""
    records = list(csv.reader(io.StringIO(dump_directory(orgs, "csv"), newline="")))
    text_columns = [i for i, field in enumerate(records[0]) if _CSV_KINDS[field] in ("str", "strs")]
    cells = [record[i] for record in records[1:] for i in text_columns]
    runnable = [c for c in cells if c.startswith(("\t", "\r")) or c.lstrip().startswith(("=", "+", "-", "@"))]
    assert runnable == []


def test_csv_export_quotes_phone_and_email_and_import_unquotes_them() -> None:
    """A phone (always "+…") and an email starting with "-" are exported after a single quote and import back equal."""
    org = Organisation.model_validate(valid(phone="+52 55 1234 5678", email="-2+3@example.org"))
    exported = dump_directory([org], "csv")
    row = dict(zip(FIELDS, next(csv.reader(io.StringIO(exported.splitlines()[1]))), strict=True))
    assert (row["phone"], row["email"]) == ("'+52 55 1234 5678", "'-2+3@example.org")
    assert parse_directory(exported, "csv") == (org,)


def test_csv_import_takes_phones_with_or_without_the_quote() -> None:
    """A spreadsheet's "+52 55 …" imports as it is, and "'+52 55 …" (marked as text) imports without the quote."""
    plain, quoted = csv_row(id="plain", phone="+52 55 1234 5678"), csv_row(id="quoted", phone="'+52 55 1234 5678")
    assert [o.phone for o in parse_directory(csv_text(plain, quoted), "csv")] == ["+52 55 1234 5678"] * 2


def test_csv_name_starting_with_a_quote_round_trips() -> None:
    """A name that itself starts with a quote keeps it through export and import (the quote is doubled)."""
    org = Organisation.model_validate(valid(name="'Casa' Ejemplo (ficticia)"))
    exported = dump_directory([org], "csv")
    assert ",''Casa' Ejemplo (ficticia)," in exported
    assert parse_directory(exported, "csv") == (org,)


# --------------------------------------------------------------------------------------------------- CSV reading


def test_csv_reads_lists_booleans_and_empty_cells() -> None:
    """CSV lists split on ';', booleans read yes/no, and empty cells take the field's default."""
    (org,) = parse_directory(csv_text(csv_row(languages=" es ; en ", verified="1", active="")), "csv")
    assert org.languages == ("es", "en")
    assert org.verified is True
    assert org.active is True
    assert org.intake_chat_id is None
    assert org.members == ()


def test_csv_spreadsheet_quirks() -> None:
    """A byte-order mark, CRLF line ends and blank rows from a spreadsheet are accepted."""
    text = "\ufeff" + csv_text(csv_row(), {}, csv_row(id="otra-red")).replace("\n", "\r\n")
    assert [o.id for o in parse_directory(text, "csv")] == ["red-prueba", "otra-red"]


def test_csv_may_leave_out_optional_columns() -> None:
    """Columns with a default (channels, members, active, verified) may be absent from the header."""
    text = "id,name,offers,languages,nationalities,regions,website,weekly_capacity\n"
    text += "red-x,Red X,legal_advice,es,any,any,https://example.org/x,3\n"
    (org,) = parse_directory(text, "csv")
    assert (org.active, org.verified, org.members) == (True, False, ())


def test_empty_directory() -> None:
    """A directory with no organisations parses to an empty tuple in both formats."""
    assert parse_directory(yaml_text(), "yaml") == ()
    assert parse_directory(HEADER + "\n", "csv") == ()


# --------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"id": "Red_Mala"}, "id", "valid id"),
        ({"offers": ["find_supporter", "lawyer"]}, "offers", "'lawyer'"),
        ({"offers": []}, "offers", "empty"),
        ({"languages": ["es", "es"]}, "languages", "twice"),
        ({"regions": ["any", "mexico"]}, "regions", "alone"),
        ({"intake_chat_id": None, "members": None}, CHANNELS_FIELD, "at least one way"),
        ({"members": None}, "members", "intake_chat_id"),
        ({"members": []}, "members", "intake_chat_id"),
        ({"intake_chat_id": 12345}, "intake_chat_id", "less than 0"),
        ({"website": "http://example.org/red"}, "website", "https://"),
        ({"phone": "555 0101"}, "phone", "+"),
        ({"email": "red.example.org"}, "email", "email"),
        ({"weekly_capacity": 10_001}, "weekly_capacity", "10000"),
        ({"weekly_capacity": None}, "weekly_capacity", "required"),
        ({"name": "=HYPERLINK(1)"}, "name", "formula"),
        ({"name": "Red \u202eacitcif\u202c"}, "name", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ({"name": "Red\u200bde Prueba"}, "name", "U+200B ZERO WIDTH SPACE"),
        ({"website": "https://example.org/\u2066red"}, "website", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ({"email": "red\u200d@example.org"}, "email", "U+200D ZERO WIDTH JOINER"),
        ({"phone": "+52\u200e55 1234 5678"}, "phone", "U+200E LEFT-TO-RIGHT MARK"),
        ({"id": "red\u00ad"}, "id", "U+00AD SOFT HYPHEN"),
        ({"name": "x" * 81}, "name", "80"),
        ({"colour": "blue"}, "colour", "not a field"),
        ({"active": "maybe"}, "active", "true/false"),
    ],
)
def test_yaml_error_names_row_and_field(change: dict[str, Any], field: str, fragment: str) -> None:
    """A bad field in the second YAML organisation is reported as row 2 with that field's name."""
    error = refused(yaml_text(valid(id="primera"), valid(**change)), "yaml")
    assert (error.row, error.field) == (2, field)
    assert said(error).startswith(f"row 2, field “{field}”: ")
    assert fragment in said(error)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"id": "-red"}, "id", "valid id"),
        ({"offers": "find_supporter;lawyer"}, "offers", "'lawyer'"),
        ({"email": "", "website": ""}, CHANNELS_FIELD, "at least one way"),
        ({"intake_chat_id": "-1001000000001"}, "members", "intake_chat_id"),
        ({"website": "ftp://example.org"}, "website", "https://"),
        ({"verified": "si"}, "verified", "true/false"),
        ({"active": "TRUEE"}, "active", "true/false"),
        ({"weekly_capacity": "1e3"}, "weekly_capacity", "whole number"),
        ({"intake_chat_id": "-1.001E+12", "members": "1"}, "intake_chat_id", "whole number"),
        ({"members": "111;abc", "intake_chat_id": "-5"}, "members", "whole number"),
        ({"name": "Red de Prueba \u202e(ficticia)"}, "name", "invisible formatting characters (U+202E"),
        ({"email": "\ufeffred@example.org"}, "email", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
    ],
)
def test_csv_error_names_spreadsheet_row_and_field(change: dict[str, str], field: str, fragment: str) -> None:
    """A bad cell in the second data row is reported as row 3 (the header is row 1), with its column."""
    error = refused(csv_text(csv_row(id="primera"), csv_row(**change)), "csv")
    assert (error.row, error.field) == (3, field)
    assert said(error).startswith(f"row 3, field “{field}”: ")
    assert fragment in said(error)


def test_duplicate_id_names_the_second_row() -> None:
    """Two organisations with one id are refused at the second, naming the first."""
    error = refused(yaml_text(valid(), valid(id="otra"), valid()), "yaml")
    assert (error.row, error.field) == (3, "id")
    assert said(error).endswith("'red-prueba' is already used by row 1")
    error = refused(csv_text(csv_row(), csv_row()), "csv")
    assert (error.row, error.field) == (3, "id")
    assert said(error).endswith("is already used by row 2")


def test_csv_row_numbers_count_blank_rows() -> None:
    """A blank row still counts, so the number matches the row a spreadsheet shows."""
    error = refused(csv_text(csv_row(), {}, csv_row(id="X")), "csv")
    assert error.row == 4


@pytest.mark.parametrize("schema", [2, None, "1"])
def test_wrong_schema_version(schema: object) -> None:
    """A YAML directory written for another schema version is refused before any row is read."""
    error = refused(yaml_text(valid(), schema=schema), "yaml")
    assert (error.row, error.field) == (0, "schema")
    assert said(error).startswith("the file, field “schema”: must be 1, found ")


@pytest.mark.parametrize(
    ("text", "row", "field", "fragment"),
    [
        ("schema: 1\norganisations: {}\n", 0, "organisations", "list"),
        ("schema: 1\norganisations: []\nextra: 1\n", 0, "extra", "unknown"),
        ("- just a list\n", 0, None, "mapping"),
        ("schema: 1\norganisations: [\n", 0, None, "not valid YAML"),
        ("schema: 1\norganisations:\n  - red-x\n", 1, None, "mapping"),
    ],
)
def test_yaml_file_shape_errors(text: str, row: int, field: str | None, fragment: str) -> None:
    """A YAML file of the wrong shape is refused with the place of the problem."""
    error = refused(text, "yaml")
    assert (error.row, error.field) == (row, field)
    assert fragment in said(error)


@pytest.mark.parametrize(
    ("text", "row", "field", "fragment"),
    [
        ("", 1, None, "no header"),
        ("id;name;offers\nred;Red;legal_advice\n", 1, None, "comma-separated"),
        (HEADER + ",colour\n", 1, "colour", "unknown column"),
        (HEADER + ",name\n", 1, "name", "twice"),
        ("id,name,languages,nationalities,regions,email,weekly_capacity\n", 1, "offers", "missing"),
        (HEADER + "\nred-x,Red X\n", 2, None, "cells"),
        (HEADER + '\nred-x,"Red X\n', 2, None, "not valid CSV"),
    ],
)
def test_csv_file_shape_errors(text: str, row: int, field: str | None, fragment: str) -> None:
    """A CSV of the wrong shape is refused at the header or at the broken row."""
    error = refused(text, "csv")
    assert (error.row, error.field) == (row, field)
    assert fragment in said(error)


def test_nothing_partial_is_returned() -> None:
    """One bad organisation at the end refuses the whole directory: the good ones before it are not returned."""
    good = [valid(id=f"red-{i}") for i in range(4)]
    text = yaml_text(*good, valid(id="red-malo", website="http://example.org"))
    assert refused(text, "yaml").row == 5
    assert parse_directory(yaml_text(*good), "yaml")  # the same rows alone are fine


def test_error_is_a_value_error() -> None:
    """DirectoryError is a ValueError, so callers that catch bad input in general catch it too."""
    assert issubclass(DirectoryError, ValueError)


def test_organisation_is_frozen_and_strict() -> None:
    """Organisations cannot be changed after validation, and unknown or mistyped fields are refused."""
    org = Organisation.model_validate(valid())
    with pytest.raises(ValueError, match="frozen"):
        org.name = "Otra"  # type: ignore[misc]
    with pytest.raises(ValueError, match="valid integer"):
        Organisation.model_validate(valid(weekly_capacity="5"))


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "row 2, field “website”: 'http://example.org' is not a website address"),
        ("es", "fila 2, campo “website”: 'http://example.org' no es una dirección web"),
        ("ht", "liy 2, chan “website”: 'http://example.org' pa yon adrès sit entènèt"),
    ],
)
def test_errors_are_said_in_the_admins_language(lang: str, expected: str) -> None:
    """The same mistake reads in Spanish, Creole or English, from the catalogs, with the row and the field."""
    error = refused(yaml_text(valid(id="primera"), valid(website="http://example.org")), "yaml")
    assert said(error, lang).startswith(expected)


def test_every_problem_has_a_text_in_every_language() -> None:
    """Each problem the directory can report is written in each catalog (with the values its text names)."""
    TR.require(f"dir.problem.{code}" for code in PROBLEMS)
    assert len(PROBLEMS) == len(set(PROBLEMS))
