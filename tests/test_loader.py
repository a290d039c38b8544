"""A broken data file stops startup with a message naming the file and the node."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.i18n import Translator
from flows.loader import PROGRAMS_DIR, FlowError, available_programs, load_program

SOURCE = PROGRAMS_DIR / "venezuela-2022"


@pytest.fixture
def program_dir(tmp_path: Path) -> Path:
    target = tmp_path / "venezuela-2022"
    shutil.copytree(SOURCE, target)
    return target


def edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def question(data: dict, question_id: str) -> dict:
    return next(q for q in data["questions"] if q["id"] == question_id)


def refuse(folder: Path, *fragments: str) -> FlowError:
    with pytest.raises(FlowError) as caught:
        load_program(folder)
    for fragment in fragments:
        assert fragment in str(caught.value)
    return caught.value


def test_shipped_program_loads() -> None:
    """The shipped program passes every check."""
    assert load_program(SOURCE).id == "venezuela-2022"


@pytest.mark.parametrize("name", available_programs())
def test_every_shipped_program_loads(name: str) -> None:
    """Every folder under flows/programs loads cleanly, with every text in every catalog (as `python -m bot check`)."""
    translator = Translator.load()
    known = {lang: translator.keys(lang) for lang in translator.languages}
    assert load_program(PROGRAMS_DIR / name, known_texts=known).id == name


def test_all_three_rulesets_are_shipped() -> None:
    """Every folder under flows/programs is a program, and the 2022, 2023 and 2025 rulesets are all there."""
    folders = sorted(p.name for p in PROGRAMS_DIR.iterdir() if p.is_dir())
    assert available_programs() == folders
    assert {"venezuela-2022", "chnv-2023", "chnv-terminated-2025"} <= set(folders)


def test_conditional_follow_up_is_checked(program_dir: Path) -> None:
    """A follow-up message shown only for some answers must name a real question and option."""

    def add(d: dict) -> None:
        d["outcomes"]["likely_eligible"]["then"].append(
            {"text": "info.safety", "if": {"answer": "nationality", "is": "martian"}}
        )

    edit(program_dir / "rules.yaml", add)
    refuse(program_dir, "rules.yaml", "outcomes.likely_eligible.info.safety", "nationality.martian")


def test_conditional_follow_up_takes_only_text_and_if(program_dir: Path) -> None:
    """A follow-up item with an unknown key is refused (a typo such as `iff` would otherwise show it to everyone)."""

    def add(d: dict) -> None:
        d["outcomes"]["likely_eligible"]["then"].append(
            {"text": "info.safety", "iff": {"answer": "nationality", "is": "venezuelan"}}
        )

    edit(program_dir / "rules.yaml", add)
    refuse(program_dir, "rules.yaml", "iff")


def test_unknown_severity_is_refused(program_dir: Path) -> None:
    """A rule's severity is blocks, pending or review; anything else is refused by name."""
    edit(program_dir / "rules.yaml", lambda d: d["rules"][0].update(severity="maybe"))
    refuse(program_dir, "rules.yaml", "node 'E1'", "severity")


def test_next_to_a_missing_question(program_dir: Path) -> None:
    """An option leading nowhere names the question and the missing target."""
    edit(program_dir / "questionnaire.yaml", lambda d: question(d, "location")["options"][0].update(next="nowhere"))
    refuse(program_dir, "questionnaire.yaml", "node 'location'", "'nowhere'")


def test_duplicate_question_id(program_dir: Path) -> None:
    """Two questions with one id are refused."""
    edit(program_dir / "questionnaire.yaml", lambda d: d["questions"].append(dict(question(d, "flight"))))
    refuse(program_dir, "node 'flight'", "not unique")


def test_unreachable_question(program_dir: Path) -> None:
    """A question no path reaches is refused by name."""

    def orphan(d: dict) -> None:
        extra = dict(question(d, "flight"), id="orphan")
        d["questions"].append(extra)

    edit(program_dir / "questionnaire.yaml", orphan)
    refuse(program_dir, "node 'orphan'", "no path")


def test_a_loop_is_refused(program_dir: Path) -> None:
    """A path that never ends (a loop back to the start) is refused."""
    edit(program_dir / "questionnaire.yaml", lambda d: question(d, "flight").update(next="nationality"))
    refuse(program_dir, "loop")


def test_rule_without_known_source(program_dir: Path) -> None:
    """Every rule cites a listed source."""
    edit(program_dir / "rules.yaml", lambda d: d["rules"][0].update(source="hearsay"))
    refuse(program_dir, "rules.yaml", "node 'E1'", "hearsay")


def test_rule_without_date(program_dir: Path) -> None:
    """Every rule carries a date."""
    edit(program_dir / "rules.yaml", lambda d: d["rules"][1].pop("date"))
    refuse(program_dir, "rules.yaml", "node 'MX1'", "date")


def test_condition_on_unknown_option(program_dir: Path) -> None:
    """A rule naming an option the question lacks is refused (a typo would otherwise never fire)."""
    edit(program_dir / "rules.yaml", lambda d: d["rules"][3]["fails_when"].update({"is": "yess"}))
    refuse(program_dir, "node 'B2'", "removal_order.yess")


def test_wrong_schema_version(program_dir: Path) -> None:
    """A file written for another schema version is refused."""
    edit(program_dir / "rules.yaml", lambda d: d.update(schema=99))
    refuse(program_dir, "rules.yaml", "schema")


def test_missing_translation(program_dir: Path) -> None:
    """A text key absent from one language is refused, naming the language and the key."""
    program = load_program(SOURCE)
    keys = program.text_keys()
    with pytest.raises(FlowError) as caught:
        load_program(program_dir, known_texts={"en": keys, "ht": keys - {"q.flight"}})
    error = str(caught.value)
    assert "'ht'" in error
    assert "q.flight" in error


def test_a_rule_an_i_dont_know_can_leave_open_needs_words_for_it(program_dir: Path) -> None:
    """A rule reading a question that offers "I don't know" must say what a person who answered so reads, and a
    doubtful one what the doubt means: the rule's own text would state as a fact what they never said."""
    rules = program_dir / "rules.yaml"
    original = rules.read_text(encoding="utf-8")
    rules.write_text(original.replace("    unknown_text: unknown.removal\n", ""), encoding="utf-8")
    refuse(program_dir, "B2", "unknown_text")
    rules.write_text(original.replace("    doubt_text: doubt.passport\n", ""), encoding="utf-8")
    refuse(program_dir, "E4", "doubt_text")


def test_as_of_older_than_a_rule_it_applies_is_refused(program_dir: Path) -> None:
    """People read "rules as of" the ruleset's `as_of`: a rule dated later would be applied under an older date."""
    edit(program_dir / "rules.yaml", lambda d: d["rules"][0].update(date="2023-01-01"))
    refuse(program_dir, "rules.yaml", "node 'E1'", "2023-01-01", "as_of 2022-12-15")


def test_as_of_older_than_a_source_it_cites_is_refused(program_dir: Path) -> None:
    """The shipped venezuela-2022 applies the H-2B rule of 2022-12-15: an as_of of the process's own date, 19 October
    2022, is refused, naming the later source and the rule that cites it."""
    edit(program_dir / "rules.yaml", lambda d: d.update(as_of="2022-10-19"))
    error = refuse(program_dir, "rules.yaml", "2022-12-15", "as_of 2022-10-19")
    assert "H2B" in str(error)


def test_an_unverified_source_cannot_rule_anyone_out(program_dir: Path) -> None:
    """A source marked `verified: false` ("reportedly [S]" in the brief) can back a review, never a bar."""
    reported = {"id": "reported", "title": "As reported", "url": "https://example.org/", "date": "2022-10-19"}

    def cite_unverified(severity: str):  # type: ignore[no-untyped-def]
        def change(data: dict) -> None:
            data["sources"].append({**reported, "grade": "secondary", "verified": False})
            next(r for r in data["rules"] if r["id"] == "B2").update(source="reported", severity=severity)

        return change

    rules = program_dir / "rules.yaml"
    original = rules.read_text(encoding="utf-8")
    edit(rules, cite_unverified("blocks"))
    refuse(program_dir, "rules.yaml", "node 'B2'", "'reported'", "verified: false", "severity: review")
    rules.write_text(original, encoding="utf-8")
    edit(rules, cite_unverified("review"))
    b2 = next(r for r in load_program(program_dir).ruleset.rules if r.id == "B2")
    assert (b2.source, b2.severity) == ("reported", "review")


def test_verified_must_be_a_real_boolean(program_dir: Path) -> None:
    """A quoted "false" is refused rather than read as true."""
    edit(program_dir / "rules.yaml", lambda d: d["sources"][0].update(verified="false"))
    refuse(program_dir, "rules.yaml", "verified")


def test_the_haitian_sea_bar_only_sends_the_case_to_a_person() -> None:
    """The brief reports the Haitian sea bar ("reportedly [S]"): its source stays unverified, its rule a review."""
    ruleset = load_program(PROGRAMS_DIR / "chnv-2023").ruleset
    sea_ht = next(r for r in ruleset.rules if r.id == "SEA_HT")
    assert sea_ht.severity == "review"
    assert next(s for s in ruleset.sources if s.id == sea_ht.source).verified is False
