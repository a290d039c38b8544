"""Loads a program (questionnaire + ruleset) from its folder and refuses anything inconsistent.

A broken file must stop the bot at startup with a message that names the file and the node, never surface
as a confused conversation with a migrant. The checks: schema version, unique ids, every `next` exists,
every question reachable, every path ends, every condition names a real question and option, every rule
cites a known source and carries a date, `as_of` is no older than any source or rule date, a rule on an unverified
source only sends the case to a person, every text key exists in every language the caller supports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from flows.conditions import AnswerDate, Condition
from flows.model import (
    END,
    OUTCOMES,
    SCHEMA_VERSION,
    Branch,
    Next,
    Question,
    Questionnaire,
    Rule,
    Ruleset,
    ScopeRule,
)
from flows.replies import BACK

PROGRAMS_DIR = Path(__file__).parent / "programs"
RULES_FILE = "rules.yaml"
_Model = TypeVar("_Model", Ruleset, Questionnaire)


class FlowError(ValueError):
    """A data file is wrong; the message names the file and the node."""

    def __init__(self, path: Path | str, node: str | None, problem: str) -> None:
        self.path, self.node, self.problem = str(path), node, problem
        where = f"{self.path}" + (f", node '{node}'" if node else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Program:
    """A questionnaire and the ruleset that judges it, validated together."""

    questionnaire: Questionnaire
    ruleset: Ruleset

    @property
    def id(self) -> str:
        return self.ruleset.id

    @cached_property
    def longest_path(self) -> Mapping[str, int]:
        """For each question, the most questions left including it: the "of N" a progress line can promise."""
        memo: dict[str, int] = {}

        def depth(node: str) -> int:
            if node == END:
                return 0
            if node not in memo:
                question = self.questionnaire.question(node)
                memo[node] = 1 + max(depth(t) for o in question.options for t in _targets(question.next_for(o)))
            return memo[node]

        for q in self.questionnaire.questions:
            depth(q.id)
        return memo

    def text_keys(self) -> set[str]:
        """Every gettext key the program's data uses."""
        keys = {self.ruleset.program}
        for q in self.questionnaire.questions:
            keys.add(q.text)
            keys.update(o.text for o in q.options)
        keys.update(r.text for r in self.ruleset.scope)
        keys.update(r.text for r in self.ruleset.rules)
        keys.update(t for r in self.ruleset.rules for t in (r.unknown_text, r.doubt_text) if t is not None)
        for follow in (*self.ruleset.outcomes.values(), *self.ruleset.routes.values()):
            keys.add(follow.text)
            keys.update(explanation.text for explanation in follow.then)
        return keys


def load_program(folder: Path | str, *, known_texts: Mapping[str, Iterable[str]] | None = None) -> Program:
    """Load and validate the program in `folder`.

    `known_texts` maps each language to the gettext keys it translates; every key the data uses must be there.
    """
    folder = Path(folder)
    rules_path = folder / RULES_FILE
    ruleset = _parse(rules_path, Ruleset)
    questionnaire_path = folder / ruleset.questionnaire
    questionnaire = _parse(questionnaire_path, Questionnaire)
    _check_questionnaire(questionnaire_path, questionnaire)
    _check_ruleset(rules_path, ruleset, questionnaire)
    program = Program(questionnaire=questionnaire, ruleset=ruleset)
    if known_texts is not None:
        _check_texts(folder, program, known_texts)
    return program


def available_programs(root: Path = PROGRAMS_DIR) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / RULES_FILE).is_file())


def _parse(path: Path, model: type[_Model]) -> _Model:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FlowError(path, None, "file not found") from None
    except yaml.YAMLError as exc:
        raise FlowError(path, None, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise FlowError(path, None, "expected a mapping at the top level")
    if raw.get("schema") != SCHEMA_VERSION:
        raise FlowError(path, None, f"schema must be {SCHEMA_VERSION}, found {raw.get('schema')!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        node = _node_of(raw, first["loc"])
        location = ".".join(str(p) for p in first["loc"])
        raise FlowError(path, node, f"{location}: {first['msg']} ({exc.error_count()} problem(s) in all)") from None


def _node_of(raw: Any, loc: tuple[int | str, ...]) -> str | None:
    """The id of the innermost listed item the error sits in, so the message can name the node."""
    node, here = None, raw
    for part in loc:
        try:
            here = here[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(here, dict) and isinstance(here.get("id"), str):
            node = here["id"]
    return node


def _targets(nxt: Next) -> Iterator[str]:
    if isinstance(nxt, str):
        yield nxt
    else:
        yield from (b.goto for b in nxt)


def _branch_conditions(nxt: Next | None) -> Iterator[Condition]:
    if isinstance(nxt, tuple):
        yield from (b.if_ for b in nxt if b.if_ is not None)


def _check_questionnaire(path: Path, qn: Questionnaire) -> None:
    ids: set[str] = set()
    for q in qn.questions:
        if q.id in ids or q.id == END:
            raise FlowError(path, q.id, "question id is not unique" if q.id in ids else f"'{END}' is reserved")
        ids.add(q.id)
        option_ids = [o.id for o in q.options]
        if len(set(option_ids)) != len(option_ids):
            raise FlowError(path, q.id, f"option ids repeat: {option_ids}")
        if BACK in option_ids:
            raise FlowError(path, q.id, f"'{BACK}' is reserved for going back and cannot be an option id")
        for o in q.options:
            if o.next is None and q.next is None:
                raise FlowError(path, q.id, f"option '{o.id}' has no next and the question has none either")
            if o.range is not None and o.unknown:
                raise FlowError(path, q.id, f"option '{o.id}' cannot be both a date range and unknown")
        for nxt in [q.next, *(o.next for o in q.options)]:
            if isinstance(nxt, tuple):
                _check_branches(path, q.id, nxt)
    if qn.start not in ids:
        raise FlowError(path, None, f"start '{qn.start}' is not a question")

    for q in qn.questions:
        for o in q.options:
            for target in _targets(q.next_for(o)):
                if target != END and target not in ids:
                    raise FlowError(path, q.id, f"option '{o.id}' leads to '{target}', which does not exist")
        for cond in [
            *_branch_conditions(q.next),
            *(c for o in q.options for c in _branch_conditions(o.next)),
        ]:
            _check_references(path, q.id, cond, qn)

    reachable = _reachable(qn)
    for q in qn.questions:
        if q.id not in reachable:
            raise FlowError(path, q.id, "no path from the start reaches this question")
    _check_ends(path, qn)


def _check_branches(path: Path, node: str, branches: tuple[Branch, ...]) -> None:
    if branches[-1].if_ is not None:
        raise FlowError(path, node, "the last branch of a `next` list must have no `if`, so some branch is taken")
    if any(b.if_ is None for b in branches[:-1]):
        raise FlowError(path, node, "only the last branch of a `next` list may go without `if`")


def _reachable(qn: Questionnaire) -> set[str]:
    seen, todo = set(), [qn.start]
    while todo:
        node = todo.pop()
        if node == END or node in seen:
            continue
        seen.add(node)
        q = qn.question(node)
        todo.extend(t for o in q.options for t in _targets(q.next_for(o)))
    return seen


def _check_ends(path: Path, qn: Questionnaire) -> None:
    """Every path must reach `end`: no cycles (a person could loop forever) and no dead ends."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        if node == END or state.get(node) == "done":
            return
        if state.get(node) == "active":
            raise FlowError(path, node, f"questions loop: {' -> '.join([*trail, node])}")
        state[node] = "active"
        q = qn.question(node)
        for o in q.options:
            for target in _targets(q.next_for(o)):
                visit(target, [*trail, node])
        state[node] = "done"

    visit(qn.start, [])


def _check_references(path: Path, node: str | None, cond: Condition, qn: Questionnaire) -> None:
    for question_id, option_id in cond.references():
        if question_id not in qn.index:
            raise FlowError(path, node, f"condition names question '{question_id}', which does not exist")
        question: Question = qn.question(question_id)
        if option_id is not None and question.option(option_id) is None:
            raise FlowError(path, node, f"condition names option '{question_id}.{option_id}', which does not exist")
    for leaf in _date_leaves(cond):
        if not any(o.range for o in qn.question(leaf.answer).options):
            raise FlowError(path, node, f"date condition on '{leaf.answer}', whose options carry no date range")


def _date_leaves(cond: Condition) -> Iterator[AnswerDate]:
    if isinstance(cond, AnswerDate):
        yield cond
    for child in getattr(cond, "all", ()) or getattr(cond, "any", ()) or ():
        yield from _date_leaves(child)
    inner = getattr(cond, "not_", None)
    if inner is not None:
        yield from _date_leaves(inner)


def _check_ruleset(path: Path, rs: Ruleset, qn: Questionnaire) -> None:
    if rs.id != qn.id:
        raise FlowError(path, None, f"ruleset '{rs.id}' is paired with questionnaire '{qn.id}'")
    source_ids = [s.id for s in rs.sources]
    if len(set(source_ids)) != len(source_ids):
        raise FlowError(path, None, f"source ids repeat: {source_ids}")
    seen: set[str] = set()
    judged: list[tuple[ScopeRule | Rule, list[Condition | None]]] = []
    judged += [(s, [s.when]) for s in rs.scope]
    judged += [(r, [r.fails_when, r.doubtful_when]) for r in rs.rules]
    for rule, conditions in judged:
        if rule.id in seen:
            raise FlowError(path, rule.id, "rule id is not unique")
        seen.add(rule.id)
        if rule.source not in source_ids:
            raise FlowError(path, rule.id, f"cites source '{rule.source}', which is not listed under sources")
        for cond in conditions:
            if cond is not None:
                _check_references(path, rule.id, cond, qn)
    for rule in rs.rules:
        _check_reason_texts(path, rule, qn)
    for scope in rs.scope:
        if scope.route not in rs.routes:
            raise FlowError(path, scope.id, f"route '{scope.route}' has no entry under routes")
    follow_ups = [(f"outcomes.{name}", f) for name, f in rs.outcomes.items()]
    follow_ups += [(f"routes.{name}", f) for name, f in rs.routes.items()]
    for where, follow in follow_ups:
        for explanation in follow.then:
            if explanation.if_ is not None:
                _check_references(path, f"{where}.{explanation.text}", explanation.if_, qn)
    missing = [o for o in OUTCOMES if o not in rs.outcomes]
    if missing:
        raise FlowError(path, None, f"outcomes lack {missing}")
    _check_as_of(path, rs)
    _check_unverified(path, rs)


def _check_as_of(path: Path, rs: Ruleset) -> None:
    """`as_of` is what a person reads ("rules as of …"): it may not be older than anything the ruleset applies."""
    judged: list[ScopeRule | Rule] = [*rs.scope, *rs.rules]
    for rule in judged:
        if rule.date > rs.as_of:
            raise FlowError(
                path, rule.id, f"dated {rule.date}, after the ruleset's as_of {rs.as_of}: as_of must be the latest date"
            )
    for source in rs.sources:
        if source.date > rs.as_of:
            citing = [r.id for r in judged if r.source == source.id]
            raise FlowError(
                path,
                citing[0] if citing else source.id,
                f"source '{source.id}' is dated {source.date}, after the ruleset's as_of {rs.as_of}"
                + (f" (cited by {', '.join(citing)})" if citing else "")
                + ": as_of must be the date of the latest source it applies",
            )


def _check_unverified(path: Path, rs: Ruleset) -> None:
    """A source marked `verified: false` may send a case to a person, never decide it: only `severity: review`."""
    unverified = {s.id for s in rs.sources if not s.verified}
    for scope in rs.scope:
        if scope.source in unverified:
            raise FlowError(
                path, scope.id, f"sends people elsewhere on source '{scope.source}', which is marked verified: false"
            )
    for rule in rs.rules:
        if rule.source in unverified and rule.severity != "review":
            raise FlowError(
                path,
                rule.id,
                f"cites only source '{rule.source}', which is marked verified: false, so it cannot be "
                f"severity {rule.severity!r}: make it severity: review (a person checks it), or verify the source",
            )


def _check_reason_texts(path: Path, rule: Rule, qn: Questionnaire) -> None:
    """A rule that can be left open by "I don't know" says so in words of its own, and so does a doubtful one:
    its `text` states a fact, which an unknown answer never is."""
    if rule.doubtful_when is not None and rule.doubt_text is None:
        raise FlowError(path, rule.id, "has doubtful_when but no doubt_text for what the person reads then")
    asked = {question_id for question_id, _ in rule.fails_when.references()}
    unknowable = sorted(q for q in asked if any(o.unknown for o in qn.question(q).options))
    if unknowable and rule.unknown_text is None:
        raise FlowError(path, rule.id, f'reads {unknowable}, which offer "I don\'t know", but has no unknown_text')


def _check_texts(folder: Path, program: Program, known_texts: Mapping[str, Iterable[str]]) -> None:
    needed = program.text_keys()
    for language, keys in sorted(known_texts.items()):
        absent = sorted(needed - set(keys))
        if absent:
            raise FlowError(folder, absent[0], f"no '{language}' translation for {len(absent)} key(s): {absent}")
