"""Text from outside, made safe to show or to export: people's names, and cells a spreadsheet will open.

Names come from Telegram, where anyone can call themselves "@helpdesk" or hide a right-to-left override in
their name so that it reads backwards. Where a name is shown to staff or to an organisation it goes through
:func:`shown_name`, so that it cannot pass for a username or for someone else's name.

A spreadsheet runs a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or carriage return) as
a formula. Every text cell we export goes through :func:`guard_cell`, which prefixes such a cell with a single
quote, as OWASP recommends; :func:`unguard_cell` removes it again when a file is imported, so a phone number
exported as ``'+52 55 …`` comes back as ``+52 55 …``.
"""

from __future__ import annotations

import re
import unicodedata

#: Invisible or layout-changing characters: format (RTL overrides, zero-width), control, surrogates, line and
#: paragraph separators, private use, unassigned. None belongs in a name written on one line.
HIDDEN_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")

#: A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@")
#: What makes a cell need the quote: a formula start (also after spaces), a tab, a line break, or a quote already
#: there (doubled, so that importing takes exactly one away).
_CELL_TRIGGERS = (*FORMULA_STARTS, "\t", "\r", "\n", "'")
QUOTE = "'"


def format_characters(text: str) -> list[str]:
    """The format characters (category Cf: RTL overrides, zero-width spaces and joiners) in `text`, each once,
    named for an error message: ``U+202E RIGHT-TO-LEFT OVERRIDE``."""
    found = dict.fromkeys(c for c in text if unicodedata.category(c) == "Cf")
    return [f"U+{ord(c):04X} {unicodedata.name(c, 'FORMAT CHARACTER')}" for c in found]


def shown_name(raw: str | None) -> str:
    """A person's name as staff and organisations may see it: visible characters only, on one line, without "@".

    Line breaks and tabs become spaces, hidden characters are dropped, runs of spaces become one, and every "@"
    goes: a name is labelled as a name wherever it is shown, and without "@" it can neither look like a username
    nor be linked as a mention. Empty when nothing visible is left.
    """
    if not raw:
        return ""
    spaced = "".join(" " if c.isspace() else c for c in raw)  # line breaks and tabs too
    visible = "".join(c for c in spaced if unicodedata.category(c) not in HIDDEN_CATEGORIES and c != "@")
    return _SPACES.sub(" ", visible).strip()


def guard_cell(cell: str) -> str:
    """`cell` as a spreadsheet will show it and never run it: quoted when it could start a formula."""
    if cell.startswith(_CELL_TRIGGERS) or cell.lstrip().startswith(FORMULA_STARTS):
        return QUOTE + cell
    return cell


def unguard_cell(cell: str) -> str:
    """The value :func:`guard_cell` quoted (or a spreadsheet user marked as text with a leading quote)."""
    return cell.removeprefix(QUOTE)
