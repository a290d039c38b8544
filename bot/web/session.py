"""The console's browser session: a signed cookie (HttpOnly, SameSite=Strict, expiring) holding a random id and
whether it signed in with a one-time link; and the CSRF token every form carries, derived from that id."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "puente_console"
#: A session (signed in or not) lasts this long after it was made.
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    sid: str
    staff: bool
    csrf: str


class Sessions:
    def __init__(self, secret: str, *, secure: bool = False, max_age: int = SESSION_SECONDS) -> None:
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="puente-console-session")
        self.secure = secure
        self.max_age = max_age

    def _csrf(self, sid: str) -> str:
        return hmac.new(self._secret, f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()

    def new(self, *, staff: bool = False) -> Session:
        sid = secrets.token_urlsafe(18)
        return Session(sid, staff, self._csrf(sid))

    def read(self, request: web.Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        sid = data["sid"]
        return Session(sid, data.get("staff") is True, self._csrf(sid))

    def write(self, response: web.StreamResponse, session: Session) -> None:
        value = self._serializer.dumps({"sid": session.sid, "staff": session.staff})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
            path="/",
        )

    @staticmethod
    def csrf_ok(session: Session, sent: object) -> bool:
        return isinstance(sent, str) and hmac.compare_digest(session.csrf, sent)
