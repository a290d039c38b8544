"""One fictional organisation for tests, built the way the directory validates it; each test changes what it is
about (its intake chat, members, whom it serves) and keeps the rest."""

from __future__ import annotations

from flows.directory import Organisation

#: A group id, as intake chats have; no fake server needed to build an organisation with it.
INTAKE_CHAT = -1001000000099


def organisation(org_id: str = "alpha", **changes: object) -> Organisation:
    """Alfa Ejemplo: helps Spanish-speaking Venezuelans anywhere find a supporter, ten new people a week."""
    fields: dict[str, object] = {
        "id": org_id,
        "name": "Alfa Ejemplo (ficticia)",
        "offers": ("find_supporter",),
        "languages": ("es",),
        "nationalities": ("venezuelan",),
        "regions": ("any",),
        "intake_chat_id": INTAKE_CHAT,
        "members": (111,),
        "weekly_capacity": 10,
        "verified": True,
    }
    return Organisation.model_validate({**fields, **changes})
