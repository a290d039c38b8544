"""One-time, expiring sign-in links to the web console.

The token travels once (in the admin's private chat, or printed at the console's start) and is stored only as its
SHA-256. Using a link is one UPDATE that succeeds only while the link is unused and unexpired, so two uses racing
each other sign in once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

from sqlalchemy import delete, insert, update

from bot.storage.sql import SqlStore
from bot.storage.tables import web_links

#: How long a sign-in link works.
LINK_TTL = dt.timedelta(minutes=10)
#: Used or expired links are kept this long (then dropped when the next link is made).
KEEP = dt.timedelta(days=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInLinks:
    def __init__(self, store: SqlStore, clock: Callable[[], dt.datetime], ttl: dt.timedelta = LINK_TTL) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl

    async def issue(self) -> str:
        """A new token; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.store.writing() as conn:
            await conn.execute(delete(web_links).where(web_links.c.expires_at < now - KEEP))
            await conn.execute(
                insert(web_links).values(
                    token_hash=digest(token), created_at=now, expires_at=now + self.ttl, used_at=None
                )
            )
        return token

    async def consume(self, token: str) -> bool:
        """Use the link: True once, for an unused link before it expires; False ever after."""
        now = self.clock()
        async with self.store.writing() as conn:
            done = await conn.execute(
                update(web_links)
                .where(
                    web_links.c.token_hash == digest(token),
                    web_links.c.used_at.is_(None),
                    web_links.c.expires_at > now,
                )
                .values(used_at=now)
            )
            return done.rowcount == 1


def console_url(public_url: str | None, listen: str | None, default_listen: str) -> str:
    """Where staff's browsers reach the console, without a trailing slash."""
    if public_url:
        return public_url.rstrip("/")
    return f"http://{listen or default_listen}"


class WebCommand:
    """/web: an admin gets a one-time sign-in link in their private chat."""

    def __init__(self, links: SignInLinks, base_url: str) -> None:
        self.links = links
        self.base_url = base_url

    async def link(self) -> tuple[str, int]:
        token = await self.links.issue()
        return f"{self.base_url}/login/{token}", int(self.links.ttl.total_seconds() // 60)
