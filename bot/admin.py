"""NGO staff commands in a private chat with the bot: keep the directory current and see the referrals.

Who is an admin is configuration (ADMIN_IDS), checked at the moment of every command. To anyone else these
commands do not exist: they are read as ordinary text.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import Translator
from bot.insights import PERIODS, Insights, figures_csv, summary
from bot.outgoing import Attachment, Outgoing, Reply
from bot.storage.referrals import Referral, Referrals, Status, iso_week
from bot.storage.tickets import Role, Tickets
from bot.texts import T
from bot.web.links import WebCommand
from flows.directory import DirectoryError, parse_directory
from flows.plaintext import guard_cell

COMMANDS = (
    "orgs", "org_pause", "org_resume", "org_capacity", "org_set", "referrals", "referrals_csv", "grant", "revoke",
    "broadcast", "broadcasts", "cancel", "program", "stats", "stats_csv", "web",
)  # fmt: skip
#: The commands the broadcast composer (bot.compose) and the program switch (bot.switch) answer, not `Admin.handle`.
ROUTED_COMMANDS = ("broadcast", "broadcasts", "cancel", "program")


@dataclass(frozen=True)
class AdminCommand:
    name: str
    args: tuple[str, ...]
    #: Lines after the command line (the organisation in YAML, for /org_set).
    body: str


def parse_command(text: str) -> AdminCommand | None:
    """An admin command in a message, or None if the message is not one."""
    if not text.startswith("/"):
        return None
    first, _, body = text.partition("\n")
    words = first.split()
    name = words[0].lstrip("/").split("@", 1)[0].lower()
    return AdminCommand(name, tuple(words[1:]), body) if name in COMMANDS else None


class Admin:
    def __init__(
        self,
        referrals: Referrals,
        translator: Translator,
        clock: Callable[[], dt.datetime],
        admins: frozenset[int],
        tickets: Tickets,
        insights: Insights | None = None,
        web: WebCommand | None = None,
    ) -> None:
        self.web = web
        self.referrals = referrals
        self.tickets = tickets
        self.insights = insights
        self.tr = translator
        self.clock = clock
        self.admins = admins

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins

    async def handle(self, admin_id: int, lang: str, command: AdminCommand) -> Reply:
        now = self.clock()
        match command.name, command.args:
            case "grant", (role, user_id) if role in (Role.VOLUNTEER, Role.ADVISOR) and user_id.isdigit():
                await self.tickets.grant(int(user_id), Role(role), admin_id, now)
                return self._say(self.tr.text(lang, T.ADMIN_GRANTED, id=user_id, role=role))
            case "revoke", (user_id,) if user_id.isdigit():
                await self.tickets.revoke(int(user_id))
                return self._say(self.tr.text(lang, T.ADMIN_REVOKED, id=user_id))
            case "orgs", ():
                return self._say(await self._listing(lang, now))
            case (("org_pause" | "org_resume"), (org_id,)):
                found = await self.referrals.change(org_id, now, active=command.name == "org_resume")
                return self._done_or_unknown(lang, found, org_id)
            case "org_capacity", (org_id, number) if number.isdigit() and int(number) <= 10_000:
                found = await self.referrals.change(org_id, now, weekly_capacity=int(number))
                return self._done_or_unknown(lang, found, org_id)
            case "org_set", ():
                return await self._set(lang, command.body, now)
            case "referrals", statuses if all(s in Status.__members__.values() for s in statuses):
                return self._say(self._referral_lines(lang, await self.referrals.listing(statuses)))
            case (("stats" | "stats_csv"), args) if self.insights is not None:
                return await self._stats(lang, command.name, args)
            case "web", () if self.web is not None:
                url, minutes = await self.web.link()
                return Reply((Outgoing(self.tr.text(lang, T.WEB_LINK, url=url, minutes=minutes), protect=True),))
            case "referrals_csv", ():
                content = referrals_csv(await self.referrals.listing()).encode()
                name = f"referrals-{now:%Y%m%d}.csv"
                caption = self.tr.text(lang, T.ADMIN_EXPORT_CAPTION, date=now.date())
                return Reply((Outgoing(caption, attachment=Attachment(name, content, "text/csv")),))
        return self._say(self.tr.text(lang, T.ADMIN_USAGE))

    async def _stats(self, lang: str, name: str, args: tuple[str, ...]) -> Reply:
        """/stats [7d|30d|all] [program]: the summary and four charts; /stats_csv the same figures as a file.
        Every count of 1 to 4 people is "<5" in all of them (bot.figures)."""
        assert self.insights is not None
        period, program = (*args, "30d", "")[:2] if len(args) != 1 else (args[0], "")
        if period not in PERIODS or len(args) > 2 or (program and program not in self.insights.programs()):
            return self._say(self.tr.text(lang, T.STATS_USAGE))
        figures = await self.insights.figures(period, program)
        span = self.tr.text(lang, f"stats.period.{period}")
        if name == "stats_csv":
            caption = self.tr.text(lang, T.STATS_CSV_CAPTION, period=span)
            content = figures_csv(figures).encode()
            file = Attachment(f"puente-stats-{period}-{figures.period.until:%Y%m%d}.csv", content, "text/csv")
            return Reply((Outgoing(caption, attachment=file),))
        # matplotlib is imported at the first /stats, not at start (it weighs some 30 MB); drawing takes a few
        # hundred milliseconds of CPU, off the event loop, so nobody else waits for it.
        from bot.charts import charts

        drawn = await asyncio.to_thread(charts, figures, self.tr, lang)
        pictures = (Outgoing(c.title, attachment=Attachment(c.filename, c.png, "image/png")) for c in drawn)
        return Reply((Outgoing(summary(figures, self.tr, lang)), *pictures))

    async def _listing(self, lang: str, now: dt.datetime) -> str:
        week = iso_week(now.date())
        loads = await self.referrals.loads(week)
        lines = [self.tr.text(lang, T.ADMIN_ORGS_HEADER, week=week)]
        for org in await self.referrals.organisations():
            state = self.tr.text(lang, T.ADMIN_ACTIVE if org.active else T.ADMIN_PAUSED)
            if not org.verified:
                state += " · " + self.tr.text(lang, T.ADMIN_UNVERIFIED)
            used = loads.get(org.id, 0)
            lines.append(f"• {org.id} · {org.name} · {state} · {used}/{org.weekly_capacity}")
        return "\n".join(lines)

    async def _set(self, lang: str, body: str, now: dt.datetime) -> Reply:
        """Add or replace one organisation, written in YAML after the command line."""
        try:
            (org,) = parse_directory(f"schema: 1\norganisations:\n- {_indent(body)}", "yaml")
        except DirectoryError as exc:
            # One organisation, so "row 1" would say nothing: only the field is named.
            problem = directory_problem(self.tr, lang, exc, row=False)
            return self._say(self.tr.text(lang, T.ADMIN_ORG_INVALID, problem=problem))
        await self.referrals.save_organisation(org, now)
        return self._say(self.tr.text(lang, T.ADMIN_ORG_SAVED, id=org.id))

    def _referral_lines(self, lang: str, found: list[Referral]) -> str:
        if not found:
            return self.tr.text(lang, T.ADMIN_REFERRALS_NONE)
        lines = [self.tr.text(lang, T.ADMIN_REFERRALS_HEADER, count=len(found))]
        lines += [f"#{r.id} · {r.org_id} · {r.status.value} · {r.created_at:%Y-%m-%d}" for r in found[-50:]]
        return "\n".join(lines)

    def _done_or_unknown(self, lang: str, found: bool, org_id: str) -> Reply:
        return self._say(self.tr.text(lang, T.ADMIN_DONE) if found else self.tr.text(lang, T.ADMIN_UNKNOWN, id=org_id))

    @staticmethod
    def _say(text: str) -> Reply:
        return Reply((Outgoing(text),))


def directory_problem(tr: Translator, lang: str, error: DirectoryError, *, row: bool = True) -> str:
    """A directory error in the admin's language: where (the file, or the row, and the field), then what."""
    where: list[str] = []
    if error.row == 0:
        where.append(tr.text(lang, T.DIR_FILE))
    elif row:
        where.append(tr.text(lang, T.DIR_ROW, row=error.row))
    if error.field is not None:
        where.append(tr.text(lang, T.DIR_FIELD, field=error.field))
    problem = tr.text(lang, f"dir.problem.{error.problem.code}", **error.problem.values)
    if not where:
        return problem
    return tr.text(lang, T.DIR_PROBLEM_AT, where=", ".join(where), problem=problem)


def referrals_csv(found: list[Referral]) -> str:
    """Referrals for a spreadsheet: no names or answers, and whether the person still has data with us.

    Every cell is guarded against formulas, though today's values (slugs, dates, yes/no) cannot start one:
    the guard does not depend on what the database holds.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "organisation", "status", "week", "created_at", "decided_at", "person_on_record"])
    for r in found:
        decided = r.decided_at.isoformat() if r.decided_at else ""
        on_record = "yes" if r.user_id is not None else "no"
        cells = [r.id, r.org_id, r.status.value, r.week, r.created_at.isoformat(), decided, on_record]
        writer.writerow([guard_cell(str(cell)) for cell in cells])
    return out.getvalue()


def _indent(body: str) -> str:
    """Nest a YAML mapping under a list item ("- ") so one organisation parses as a directory of one."""
    lines = body.strip("\n").splitlines()
    return "\n  ".join(lines)
