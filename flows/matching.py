"""Which sponsorship organisations to show a person, chosen so referrals spread fairly among them.

The host counts the referrals each organisation received this week and passes them in as `load`; this module
only filters and ranks, so the same directory, person and counts always give the same answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from flows.directory import ANY, Offer, Organisation

_MASK64 = (1 << 64) - 1
#: Places the questionnaire names that the directory does not: an organisation serving "elsewhere" (any country
#: but Mexico, Panama and the US) serves them, as it did before the questionnaire named them.
_DIRECTORY_REGION = {"colombia": "elsewhere", "venezuela": "elsewhere"}
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


@dataclass(frozen=True)
class Seeker:
    """The person looking for help, in the bot's answer ids."""

    user_id: int
    #: The language the person chose: es, ht or en.
    language: str
    #: The answer to "nationality": venezuelan, family, or another id (served only by organisations serving `any`).
    nationality: str
    #: The answer to "Where are you now?" (colombia, venezuela, mexico, panama, usa, elsewhere); None when not asked
    #: or not answered.
    region: str | None
    needs: frozenset[Offer]


def match(
    orgs: Sequence[Organisation],
    person: Seeker,
    load: Mapping[str, int],
    *,
    exclude: Collection[str] = (),
    limit: int = 3,
) -> list[Organisation]:
    """At most `limit` organisations that can help `person` now, best first.

    Fairness: the organisation that has used the smallest share of its weekly capacity comes first, so as each
    referral is counted the next person is sent elsewhere and referrals spread in proportion to capacity. Among
    equal shares, verified ones come before unverified, then those covering more of the person's needs, and the last
    tie is broken by a hash of the person and the organisation, so it favours a different organisation per person.

    `load[org.id]` is the referrals counted for that organisation this week (absent means none); `exclude` holds
    the ids the person was already referred to.
    """
    eligible = [org for org in orgs if org.id not in exclude and _can_help(org, person, load.get(org.id, 0))]
    eligible.sort(key=lambda org: _rank(org, person, load.get(org.id, 0)))
    return eligible[: max(limit, 0)]


def _can_help(org: Organisation, person: Seeker, used: int) -> bool:
    return (
        org.active
        and org.weekly_capacity - used > 0
        and person.language in org.languages
        and _serves(org.nationalities, person.nationality)
        and _serves(org.regions, _DIRECTORY_REGION.get(person.region or "", person.region))
        and not person.needs.isdisjoint(org.offers)
    )


def _serves(served: tuple[str, ...], value: str | None) -> bool:
    """`any` serves everyone, including a person whose answer is unknown; otherwise the answer must be listed."""
    return ANY in served or value in served


def _rank(org: Organisation, person: Seeker, used: int) -> tuple[float, bool, int, int, str]:
    """Sort key, lowest first. Equal fractions give equal floats (division is correctly rounded), so ties stay ties."""
    share_used = used / org.weekly_capacity
    covered = len(person.needs.intersection(org.offers))
    return share_used, not org.verified, -covered, _mix(f"{person.user_id}:{org.id}"), org.id


def _mix(text: str) -> int:
    """A stable 64-bit hash (FNV-1a, then the MurmurHash3 finaliser to spread it); Python's hash() varies per run."""
    h = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)
