"""The console's aiohttp application: routes, the session middleware and the pages.

Every page is rendered by Jinja2 with autoescape on; no page shows anything about a real person (the preview
runs in a sandbox, the insights are the suppressed aggregates, the texts are the catalogs). Every POST carries the
session's CSRF token; the session cookie is signed, HttpOnly and SameSite=Strict. The access log is off: a sign-in
link's token is in its path.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot import ops
from bot.figures import Figures
from bot.i18n import LANGUAGES, Translator
from bot.insights import PERIODS, Insights, figures_csv, summary
from bot.programs import Programs
from bot.web.catalogs import review
from bot.web.chrome import LABELS
from bot.web.links import SignInLinks
from bot.web.preview import Sandboxes
from bot.web.session import Session, Sessions
from flows.replies import Vocabulary

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
UI_COOKIE = "puente_ui"
DEFAULT_LISTEN = "127.0.0.1:8081"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
CONSOLE: web.AppKey[Console] = web.AppKey("console")
HEADERS = {
    # Nothing from elsewhere, no framing, and no Referer: a sign-in link's token must not travel on.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    programs: Programs
    translator: Translator
    sandboxes: Sandboxes
    sessions: Sessions
    links: SignInLinks | None
    insights: Insights | None
    default_ui: str = "en"

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def render(self, request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
        ui = self.ui(request)
        page = self.templates.get_template(name).render(
            t=LABELS[ui],
            ui=ui,
            languages=LANGUAGES,
            session=request[SESSION],
            path=request.path_qs,
            lang_name=lambda lang: self.translator.text(lang, "lang.name"),
            **values,
        )
        return web.Response(text=page, content_type="text/html", status=status)

    def ui(self, request: web.Request) -> str:
        chosen = request.cookies.get(UI_COOKIE, "")
        return chosen if chosen in LABELS else self.default_ui


def build_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[_sessions], client_max_size=64 * 1024)
    app[CONSOLE] = console
    app.router.add_get("/", _home)
    app.router.add_get("/preview", _preview)
    app.router.add_post("/preview/start", _preview_start)
    app.router.add_post("/preview/send", _preview_send)
    app.router.add_post("/preview/language", _preview_language)
    app.router.add_get("/preview/transcript.txt", _transcript)
    app.router.add_get("/insights", _insights)
    app.router.add_get("/insights.csv", _insights_csv)
    app.router.add_get("/texts", _texts)
    app.router.add_get("/signin", _signin)
    app.router.add_get("/login/{token}", _login_page)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/ui/{lang}", _ui)
    app.router.add_static("/static", HERE / "static")
    return app


@web.middleware
async def _sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request has a session (a new one is made and set); a POST without its CSRF token is refused."""
    console = request.app[CONSOLE]
    session = console.sessions.read(request)
    fresh = session is None
    if session is None:
        session = console.sessions.new()
    request[SESSION] = session
    if request.method == "POST":
        form = await request.post()
        if fresh or not Sessions.csrf_ok(session, form.get("csrf")):
            response: web.StreamResponse = web.Response(text="Forbidden: stale or forged form.", status=403)
            for name, value in HEADERS.items():
                response.headers[name] = value
            return response
    response = await handler(request)
    if request[SESSION] is not session or fresh:  # signed in or out, or new
        console.sessions.write(response, request[SESSION])
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _home(request: web.Request) -> web.StreamResponse:
    return _see("/preview")


# ---------------------------------------------------------------------------------------------- preview


async def _preview(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    sandbox = console.sandboxes.get(request[SESSION].sid)
    values: dict[str, Any] = {
        "programs": [p.id for p in console.programs.all()],
        "active_program": console.programs.active.id,
        "sandbox": sandbox,
        "answers": [],
        "decision": None,
        "chat_language": None,
    }
    if sandbox is not None:
        async with sandbox.lock:
            values.update(
                answers=await sandbox.answers(),
                decision=await sandbox.decision(),
                chat_language=await sandbox.language_now(),
                active_program=sandbox.program.id,
            )
    return console.render(request, "preview.html", **values)


async def _preview_start(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    lang = str(form.get("lang", ""))
    program = str(form.get("program", ""))
    if lang not in LANGUAGES or console.programs.get(program) is None:
        return web.Response(text="Unknown language or program.", status=400)
    await console.sandboxes.open(request[SESSION].sid, program, lang)
    return _see("/preview#end")


async def _preview_send(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    sandbox = console.sandboxes.get(request[SESSION].sid)
    if sandbox is None:
        return _see("/preview")
    form = await request.post()
    button, text = str(form.get("b", "")), str(form.get("text", ""))
    async with sandbox.lock:
        if button.isdigit():
            await sandbox.tap(int(button))
        else:
            await sandbox.type(text)
    return _see("/preview#end")


async def _preview_language(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    sandbox = console.sandboxes.get(request[SESSION].sid)
    lang = str((await request.post()).get("lang", ""))
    if sandbox is None or lang not in LANGUAGES:
        return _see("/preview")
    async with sandbox.lock:
        await sandbox.language(lang)
    return _see("/preview#end")


async def _transcript(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[CONSOLE].sandboxes.get(request[SESSION].sid)
    if sandbox is None:
        return _see("/preview")
    name = f"puente-preview-{sandbox.program.id}.txt"
    return web.Response(
        text=sandbox.transcript(),
        content_type="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---------------------------------------------------------------------------------------------- staff pages


def _staff_only(request: web.Request) -> web.StreamResponse | None:
    if request[SESSION].staff:
        return None
    return _see("/signin")


async def _figures(request: web.Request) -> Figures | web.StreamResponse:
    """The figures of the period and program the page asks for (30 days, every program when it asks for none or
    for one that does not exist); a redirect to sign in, or 503 without a database, instead."""
    insights = request.app[CONSOLE].insights
    if (refused := _staff_only(request)) is not None:
        return refused
    if insights is None:
        return web.Response(text="Insights need the database.", status=503)
    period = request.query.get("period", "30d")
    program = request.query.get("program", "")
    if period not in PERIODS:
        period = "30d"
    if program and program not in insights.programs():
        program = ""
    return await insights.figures(period, program)


async def _insights(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    figures = await _figures(request)
    if not isinstance(figures, Figures):
        return figures
    assert console.insights is not None
    lang = console.ui(request)
    # matplotlib only here (it weighs some 30 MB), drawing off the event loop as /stats does.
    from bot.charts import charts

    drawn = await asyncio.to_thread(charts, figures, console.translator, lang)
    pictures = [(c.title, base64.b64encode(c.png).decode()) for c in drawn]
    return console.render(
        request,
        "insights.html",
        summary=summary(figures, console.translator, lang),
        charts=pictures,
        periods=list(PERIODS),
        period=figures.period.name,
        program=figures.program,
        programs=console.insights.programs(),
        period_name=lambda name: console.translator.text(lang, f"stats.period.{name}"),
    )


async def _insights_csv(request: web.Request) -> web.StreamResponse:
    figures = await _figures(request)
    if not isinstance(figures, Figures):
        return figures
    name = f"puente-stats-{figures.period.name}-{figures.period.until:%Y%m%d}.csv"
    return web.Response(
        text=figures_csv(figures),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _texts(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if (refused := _staff_only(request)) is not None:
        return refused
    rows = await asyncio.to_thread(review)
    only_flagged = request.query.get("all") != "1"
    flagged = sum(1 for row in rows if row.flagged)
    shown = [row for row in rows if row.flagged] if only_flagged else rows
    return console.render(request, "texts.html", rows=shown, flagged=flagged, total=len(rows), only=only_flagged)


# ---------------------------------------------------------------------------------------------- signing in


async def _signin(request: web.Request) -> web.StreamResponse:
    return request.app[CONSOLE].render(request, "signin.html", token=None, refused=False)


async def _login_page(request: web.Request) -> web.StreamResponse:
    """The link opens a page with a button: only the POST uses the link (a link preview fetching it uses nothing)."""
    return request.app[CONSOLE].render(request, "signin.html", token=request.match_info["token"], refused=False)


async def _login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    token = str((await request.post()).get("token", ""))
    if console.links is None or not token or not await console.links.consume(token):
        log.info("console sign-in refused")
        return console.render(request, "signin.html", status=403, token=None, refused=True)
    log.info("console sign-in")
    # A new session id on signing in: an id someone planted before cannot ride along.
    request[SESSION] = console.sessions.new(staff=True)
    return _see("/insights")


async def _logout(request: web.Request) -> web.StreamResponse:
    request[SESSION] = request.app[CONSOLE].sessions.new()
    return _see("/preview")


async def _ui(request: web.Request) -> web.StreamResponse:
    lang = request.match_info["lang"]
    back = request.query.get("next", "/preview")
    if not back.startswith("/") or back.startswith("//"):
        back = "/preview"
    response = _see(back)
    if lang in LABELS:
        response.set_cookie(UI_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="Strict", path="/")
    return response


# ---------------------------------------------------------------------------------------------- serving


def console_for(
    programs: Programs,
    translator: Translator,
    vocabulary: Vocabulary,
    clock: Callable[[], dt.datetime],
    *,
    links: SignInLinks | None,
    insights: Insights | None,
    secret: str | None = None,
    secure: bool = False,
    default_ui: str = "en",
) -> Console:
    """The console's parts. Without `secret` sessions are signed with a key of this process (lost at restart)."""
    sessions = Sessions(secret or secrets.token_urlsafe(32), secure=secure)
    sandboxes = Sandboxes(programs, translator, vocabulary, clock)
    return Console(programs, translator, sandboxes, sessions, links, insights, default_ui)


async def start(console: Console, listen: str) -> web.AppRunner:
    """Serve the console on `listen` ("127.0.0.1:8081"); the caller cleans up the runner."""
    return await ops.serve_on(build_app(console), listen)
