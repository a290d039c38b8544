"""Matching a person to organisations: only those that can help, ranked so referrals spread fairly."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flows.directory import Offer, Organisation
from flows.matching import Seeker, match


def org(org_id: str, **changes: Any) -> Organisation:
    """An active, verified organisation serving every Spanish speaker anywhere, with `changes` applied."""
    fields: dict[str, Any] = {
        "id": org_id,
        "name": f"Organización {org_id} (ficticia)",
        "offers": ("find_supporter", "legal_advice"),
        "languages": ("es",),
        "nationalities": ("any",),
        "regions": ("any",),
        "email": f"{org_id}@example.org",
        "weekly_capacity": 10,
        "verified": True,
    }
    fields.update(changes)
    return Organisation.model_validate(fields)


def person(
    user_id: int = 7,
    *,
    language: str = "es",
    nationality: str = "venezuelan",
    region: str | None = "mexico",
    needs: frozenset[Offer] = frozenset({"find_supporter"}),
) -> Seeker:
    return Seeker(user_id=user_id, language=language, nationality=nationality, region=region, needs=needs)


def ids(orgs: list[Organisation]) -> list[str]:
    return [o.id for o in orgs]


# --------------------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("change", "seeker"),
    [
        ({"languages": ("ht", "en")}, person(language="es")),
        ({"nationalities": ("venezuelan",)}, person(nationality="family")),
        ({"nationalities": ("venezuelan", "family")}, person(nationality="other")),
        ({"regions": ("panama", "elsewhere")}, person(region="mexico")),
        ({"regions": ("mexico",)}, person(region="usa")),
        ({"regions": ("mexico",)}, person(region=None)),
        ({"regions": ("mexico", "panama")}, person(region="colombia")),
        ({"offers": ("travel_help", "legal_advice")}, person(needs=frozenset({"find_supporter"}))),
        ({"active": False}, person()),
        ({"weekly_capacity": 0}, person()),
    ],
)
def test_filters_leave_out_who_cannot_help(change: dict[str, Any], seeker: Seeker) -> None:
    """Wrong language, nationality, region or offers, inactive, or no capacity left: never shown."""
    assert match([org("fits"), org("nope", **change)], seeker, {}) == [org("fits")]


@pytest.mark.parametrize(
    ("change", "seeker"),
    [
        ({"languages": ("ht", "es")}, person(language="ht")),
        ({"nationalities": ("family",)}, person(nationality="family")),
        ({"nationalities": ("any",)}, person(nationality="h2b_country")),
        ({"regions": ("any",)}, person(region=None)),
        ({"regions": ("panama",)}, person(region="panama")),
        ({"regions": ("elsewhere",)}, person(region="colombia")),  # the directory has no Colombia or Venezuela
        ({"regions": ("panama", "elsewhere")}, person(region="venezuela")),
        ({"offers": ("travel_help",)}, person(needs=frozenset({"travel_help", "legal_advice"}))),
    ],
)
def test_filters_keep_who_can_help(change: dict[str, Any], seeker: Seeker) -> None:
    """A listed value or `any` serves the person, and one shared need is enough."""
    assert ids(match([org("yes", **change)], seeker, {})) == ["yes"]


def test_full_capacity_is_left_out() -> None:
    """An organisation whose referrals this week reached its capacity is not shown; one short of it still is."""
    orgs = [org("full", weekly_capacity=3), org("room", weekly_capacity=3)]
    assert ids(match(orgs, person(), {"full": 3, "room": 2})) == ["room"]
    assert ids(match(orgs, person(), {"full": 5, "room": 3})) == []


def test_excluded_ids_are_left_out() -> None:
    """An organisation the person was already referred to is not offered again."""
    orgs = [org("org-a"), org("org-b"), org("org-c")]
    assert set(ids(match(orgs, person(), {}, exclude={"org-b"}))) == {"org-a", "org-c"}


def test_at_most_limit() -> None:
    """At most three organisations are returned by default, and never more than `limit`."""
    orgs = [org(f"org-{i}") for i in range(8)]
    assert len(match(orgs, person(), {})) == 3
    assert len(match(orgs, person(), {}, limit=5)) == 5
    assert match(orgs, person(), {}, limit=0) == []
    assert match(orgs, person(), {}, limit=-1) == []


def test_no_needs_match_nothing() -> None:
    """A person who has named no need is matched to no organisation (there is nothing to refer them for)."""
    assert match([org("org-a")], person(needs=frozenset()), {}) == []


# --------------------------------------------------------------------------------------------------- fairness


def simulate(orgs: list[Organisation], people: int) -> Counter[str]:
    """Refer each person to their top match and count it, as the bot would."""
    load: Counter[str] = Counter()
    for user_id in range(1, people + 1):
        top = match(orgs, person(user_id), load)
        if top:
            load[top[0].id] += 1
    return load


def test_referrals_spread_evenly_among_equal_organisations() -> None:
    """300 people across four equal organisations give each 75, give or take one."""
    counts = simulate([org(f"org-{i}", weekly_capacity=100) for i in range(4)], 300)
    assert sum(counts.values()) == 300
    assert max(counts.values()) - min(counts.values()) <= 1


def test_referrals_spread_in_proportion_to_capacity() -> None:
    """An organisation with twice the capacity receives about twice the referrals."""
    counts = simulate([org("small", weekly_capacity=50), org("large", weekly_capacity=100)], 90)
    assert abs(counts["small"] - 30) <= 1
    assert abs(counts["large"] - 60) <= 1


def test_full_organisation_never_appears() -> None:
    """Once an organisation reaches its weekly capacity it is never shown, at any rank, and the rest take the others."""
    orgs = [org("tiny", weekly_capacity=1), *(org(f"org-{i}", weekly_capacity=100) for i in range(3))]
    load: Counter[str] = Counter()
    for user_id in range(1, 301):
        shown = match(orgs, person(user_id), load)
        assert all(load[o.id] < o.weekly_capacity for o in shown)
        load[shown[0].id] += 1
    assert load["tiny"] == 1


def test_capacity_running_out_everywhere_shows_nobody() -> None:
    """When every organisation is full, the person is shown none rather than an overloaded one."""
    counts = simulate([org("org-a", weekly_capacity=2), org("org-b", weekly_capacity=3)], 10)
    assert counts == Counter({"org-a": 2, "org-b": 3})


def test_ties_are_broken_differently_for_different_people() -> None:
    """At equal load, different people see different organisations first (no organisation always wins a tie)."""
    orgs = [org(f"org-{i}") for i in range(4)]
    firsts = Counter(match(orgs, person(user_id), {})[0].id for user_id in range(1, 401))
    assert set(firsts) == {o.id for o in orgs}
    assert min(firsts.values()) >= 50


def test_same_person_same_answer() -> None:
    """The ranking is deterministic: the same person, directory and load give the same list, in any input order."""
    orgs = [org(f"org-{i}") for i in range(6)]
    once = match(orgs, person(42), {"org-1": 2})
    assert match(list(reversed(orgs)), person(42), {"org-1": 2}) == once


def test_verified_preferred_at_equal_load() -> None:
    """At the same share of capacity used, a verified organisation comes before an unverified one, for everyone."""
    orgs = [org("unverified", verified=False), org("verified")]
    for user_id in range(1, 50):
        assert ids(match(orgs, person(user_id), {"unverified": 3, "verified": 3})) == ["verified", "unverified"]


def test_lower_load_beats_verification() -> None:
    """Load comes first: an unverified organisation with more room left ranks above a busier verified one."""
    orgs = [org("unverified", verified=False), org("verified")]
    assert ids(match(orgs, person(), {"verified": 1})) == ["unverified", "verified"]


def test_more_needs_covered_first_at_equal_load() -> None:
    """Between equally loaded, equally verified organisations, the one covering more needs comes first."""
    orgs = [org("one", offers=("legal_advice",)), org("both", offers=("legal_advice", "travel_help"))]
    needs: frozenset[Offer] = frozenset({"legal_advice", "travel_help"})
    for user_id in range(1, 50):
        assert ids(match(orgs, person(user_id, needs=needs), {})) == ["both", "one"]
