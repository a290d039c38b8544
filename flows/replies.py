"""Free text to an option id, per language, in one place (buttons carry ids and never need this)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

WORDS_FILE = Path(__file__).parent / "words.yaml"
BACK = "back"


def normalize(text: str) -> str:
    """Fold case, accents, punctuation and spacing: "¡Sí!" and "si" read the same."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", letters).split())


@dataclass(frozen=True)
class Vocabulary:
    """Per language, normalized typed word -> option id (or ``back``)."""

    words: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, path: Path = WORDS_FILE) -> Vocabulary:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.pop("schema", None) != 1:
            raise ValueError(f"{path}: expected `schema: 1` and a mapping of languages")
        words: dict[str, dict[str, str]] = {}
        for language, meanings in raw.items():
            table: dict[str, str] = {}
            for meaning, spellings in meanings.items():
                for spelling in spellings:
                    key = normalize(str(spelling))
                    if table.get(key, meaning) != meaning:
                        raise ValueError(f"{path}: '{spelling}' means both {table[key]} and {meaning} in {language}")
                    table[key] = meaning
            words[language] = table
        return cls(words)

    def meaning(self, text: str, language: str) -> str | None:
        """What the text means in the person's language, else in the others when they all agree."""
        key = normalize(text)
        own = self.words.get(language, {}).get(key)
        if own is not None:
            return own
        others = {table[key] for lang, table in self.words.items() if lang != language and key in table}
        return others.pop() if len(others) == 1 else None


def match_option(text: str, options: Sequence[tuple[str, str]], language: str, vocabulary: Vocabulary) -> str | None:
    """The option id a typed reply stands for, ``BACK``, or None. `options` are (id, label) as shown."""
    key = normalize(text)
    if not key:
        return None
    if key.isdigit():
        index = int(key) - 1
        return options[index][0] if 0 <= index < len(options) else None
    by_label = [oid for oid, label in options if normalize(label) == key]
    if len(by_label) == 1:
        return by_label[0]
    meaning = vocabulary.meaning(text, language)
    ids = {oid for oid, _ in options}
    if meaning == BACK or meaning in ids:
        return meaning
    if len(key) >= 3:
        prefixed = [oid for oid, label in options if normalize(label).startswith(key)]
        if len(prefixed) == 1:
            return prefixed[0]
    return None
