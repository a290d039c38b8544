"""Names shown to staff and organisations, and cells written for spreadsheets (flows/plaintext.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.admin import referrals_csv
from bot.storage.referrals import Referral, Status
from flows.plaintext import guard_cell, shown_name, unguard_cell


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Juan", "Juan"),
        ("@helpdesk", "helpdesk"),
        ("@@ soporte @ oficial", "soporte oficial"),
        ("\u202enimda@", "nimda"),  # RTL override: displayed as "@admin"
        ("Ana\u200b\u200dMaría", "AnaMaría"),  # zero-width space and joiner
        ("Jean\u2066\u2069 Pierre\u200e", "Jean Pierre"),  # an isolate and a direction mark
        ("Line\none\u2028two\x00", "Line one two"),  # line breaks, a line separator, a NUL
        ("  José   Luis  ", "José Luis"),
        ("عمر", "عمر"),  # right-to-left script itself is fine; only the overrides go
        ("\u202e@", ""),
        (None, ""),
    ],
)
def test_shown_name_drops_hidden_characters_and_at_signs(raw: str | None, shown: str) -> None:
    """A name keeps its visible letters on one line, loses format and control characters and every "@"."""
    assert shown_name(raw) == shown


@given(st.text())
def test_shown_name_never_hides_or_mentions(raw: str) -> None:
    """Whatever a person calls themselves, the name shown has no format or control character and no "@"."""
    name = shown_name(raw)
    assert "@" not in name
    assert not [c for c in name if unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp")]
    assert name == name.strip()


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("https://example.org")', '\'=HYPERLINK("https://example.org")'),
        ("+52 55 1234 5678", "'+52 55 1234 5678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("'quoted", "''quoted"),
        ("Red de Prueba", "Red de Prueba"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_guard_cell_quotes_what_a_spreadsheet_would_run(cell: str, written: str) -> None:
    """A cell that could start a formula (or already starts with a quote) is written after a single quote."""
    assert guard_cell(cell) == written


@given(st.text())
def test_unguard_undoes_guard(cell: str) -> None:
    """Reading a guarded cell gives back exactly what was written."""
    assert unguard_cell(guard_cell(cell)) == cell


def test_referrals_csv_guards_every_cell() -> None:
    """The referrals export quotes a cell that would start a formula, such as an organisation id from an old row."""
    created = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    referral = Referral(1, None, "=cmd|' /C calc'!A0", Status.PENDING, "2026-W10", created, None, None, None)
    (header, row) = list(csv.reader(io.StringIO(referrals_csv([referral]))))
    assert header[1] == "organisation"
    assert row[1] == "'=cmd|' /C calc'!A0"
    assert row[0] == "1"
    assert row[4] == created.isoformat()
