"""Typed answers map to the same option ids as buttons, in each language."""

from __future__ import annotations

import pytest

from flows.replies import BACK, Vocabulary, match_option, normalize

YES_NO = [("yes", "Sí"), ("no", "No"), ("dont_know", "No sé")]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load()


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("sí", "es", "yes"),
        ("si", "es", "yes"),
        ("¡Sí!", "es", "yes"),
        ("SI", "es", "yes"),
        ("wi", "ht", "yes"),
        ("yes", "en", "yes"),
        ("1", "es", "yes"),
        ("2", "ht", "no"),
        ("no", "es", "no"),
        ("non", "ht", "no"),
        ("no sé", "es", "dont_know"),
        ("no se", "es", "dont_know"),
        ("mwen pa konnen", "ht", "dont_know"),
        ("m pa konnen", "ht", "dont_know"),
        ("idk", "en", "dont_know"),
        ("wi", "es", "yes"),  # a Creole speaker who picked Spanish is still understood
        ("atrás", "es", BACK),
        ("retounen", "ht", BACK),
        ("back", "en", BACK),
    ],
)
def test_typed_answer(vocabulary: Vocabulary, text: str, language: str, expected: str) -> None:
    """The typed word picks the option a person means."""
    assert match_option(text, YES_NO, language, vocabulary) == expected


@pytest.mark.parametrize("text", ["", "   ", "7", "0", "maybe tomorrow", "🙂", "\u202e\u0000"])
def test_unmappable_text(vocabulary: Vocabulary, text: str) -> None:
    """Text that names no option gives None, so the question is asked again."""
    assert match_option(text, YES_NO, "es", vocabulary) is None


def test_labels_and_prefixes(vocabulary: Vocabulary) -> None:
    """An option's own label matches, and so does a unique start of it."""
    options = [("mexico", "México"), ("panama", "Panamá"), ("usa", "Estados Unidos")]
    assert match_option("mexico", options, "es", vocabulary) == "mexico"
    assert match_option("estados", options, "es", vocabulary) == "usa"
    assert match_option("pa", options, "es", vocabulary) is None  # too short to be sure


def test_normalize_folds_case_accents_and_punctuation() -> None:
    """ "¡Sí!" and "si" read the same; Creole accents fold too."""
    assert normalize("¡Sí!") == "si"
    assert normalize("  Dèyè  ") == "deye"
