"""The composition root: settings in, a running bot out. Every part is built here and handed to the next."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.types import ErrorEvent, User
from aiogram.utils.token import TokenValidationError, validate_token
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from redis.asyncio import Redis

from bot import cluster, logs, ops
from bot.access import Access
from bot.admin import Admin
from bot.broadcast import Broadcaster, Subscriptions
from bot.compose import Composer
from bot.config import Settings
from bot.connect import Connector
from bot.conversation import Conversation
from bot.digest import WeeklyDigest
from bot.handoff import Handoff
from bot.i18n import Translator
from bot.insights import Insights
from bot.jobs import in_rounds
from bot.metrics import CountCalls, CountUpdates, Metrics, store_depths
from bot.outbox import ChatLimits, Entry, Outbox
from bot.outgoing import Outgoing, Reply
from bot.programs import Programs
from bot.render import Renderer
from bot.retention import Retention
from bot.storage import Erasure, Participant, SqlStore, Store, open_store
from bot.storage.broadcasts import Broadcasts
from bot.storage.deployment import Deployment
from bot.storage.referrals import Referrals
from bot.storage.tickets import Tickets
from bot.switch import ProgramSwitch
from bot.telegram.handlers import build_routers, tell_to_slow_down
from bot.telegram.menus import CommandMenus
from bot.telegram.middlewares import (
    FloodControl,
    Handling,
    IgnoreStrangers,
    KnownChats,
    OnePersonAtATime,
    RetryRequests,
)
from bot.telegram.pacing import ChatPace, Pacer, PaceSends
from bot.telegram.sender import TelegramSender, TelegramStaffApi, broadcast_sender
from bot.telegram.session import LeanSession
from bot.texts import T, transport_keys
from bot.web import app as web_console
from bot.web.links import SignInLinks, WebCommand, console_url
from flows.loader import PROGRAMS_DIR, Program, available_programs, load_program
from flows.replies import Vocabulary

log = logging.getLogger(__name__)

NO_TOKEN = """\
Puente needs a Telegram bot token, and BOT_TOKEN is not set.

  1. In Telegram, open @BotFather and send /newbot; follow its questions.
  2. Copy the token it gives you (it looks like 123456789:AAE...).
  3. Put it in a file named .env beside README.md:   BOT_TOKEN=123456789:AAE...
     (or export BOT_TOKEN in your shell), then start again.

To try the questionnaire without Telegram:  python -m bot chat --lang es
"""
NO_WEBHOOK = """\
Webhook mode needs WEBHOOK_URL (the public HTTPS address Telegram posts updates to) and WEBHOOK_SECRET (1 to 256 of
A-Z, a-z, 0-9, _ and -, sent back by Telegram with every update). Long polling (`python -m bot`) needs neither."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Core:
    """The parts every transport shares."""

    programs: Programs
    translator: Translator
    vocabulary: Vocabulary

    @property
    def program(self) -> Program:
        """The program screened for now."""
        return self.programs.active


def load_core(settings: Settings) -> Core:
    """Load texts and every shipped program and check them against each other; raises on any gap.

    All programs are checked, not only the active one: an admin may switch to any of them while the bot runs.
    """
    translator = Translator.load()
    translator.require(transport_keys())
    known = {lang: translator.keys(lang) for lang in translator.languages}
    programs = [load_program(Path(PROGRAMS_DIR) / name, known_texts=known) for name in available_programs()]
    return Core(Programs(programs, settings.program), translator, Vocabulary.load())


def conversation_for(
    core: Core,
    store: Store,
    settings: Settings,
    connector: Connector | None = None,
    handoff: Handoff | None = None,
    subscriptions: Subscriptions | None = None,
    access: Access | None = None,
) -> Conversation:
    """The conversation service; without a connector or handoff (the terminal chat) those features say so."""
    return Conversation(
        core.programs,
        store,
        core.translator,
        core.vocabulary,
        clock=utc_now,
        default_language=settings.default_language,
        connector=connector,
        handoff=handoff,
        subscriptions=subscriptions,
        retention_days=settings.retention_days,
        access=access,
    )


def build_dispatcher(
    services: Services, sender: TelegramSender, settings: Settings, metrics: Metrics | None = None
) -> Dispatcher:
    conversation = services.conversation
    staff_chat_id = settings.staff_chat_id

    async def intake_chats() -> list[int]:
        organisations = await services.connector.referrals.organisations()
        return [org.intake_chat_id for org in organisations if org.intake_chat_id is not None]

    known_chats = KnownChats(staff_chat_id, intake_chats)
    in_order = services.in_order

    async def slow_down(user: User, chat_id: int) -> None:
        # In the person's queue, so the notice comes after the replies to what got through.
        await in_order.run(user.id, lambda: tell_to_slow_down(user, chat_id, conversation, sender))

    dispatcher = Dispatcher(
        conversation=conversation,
        sender=sender,
        connector=services.connector,
        admin=services.admin,
        handoff=services.handoff,
        composer=services.composer,
        broadcaster=services.broadcaster,
        switch=services.switch,
        known_chats=known_chats,
    )
    # In this order: every update is counted (in the metrics, and until handled, for shutdown), strangers and
    # other bots are dropped, then floods, before anyone waits in a person's queue.
    if metrics is not None:
        dispatcher.update.outer_middleware(CountUpdates(metrics))
    dispatcher.update.outer_middleware(services.handling)
    dispatcher.update.outer_middleware(IgnoreStrangers(known_chats))
    exempt = () if staff_chat_id is None else (staff_chat_id,)
    flood = FloodControl(settings.flood_burst, settings.flood_rate, slow_down, exempt=exempt)
    dispatcher.update.outer_middleware(flood)
    dispatcher.update.outer_middleware(in_order)
    dispatcher.include_routers(*build_routers(staff_chat_id))

    @dispatcher.errors()
    async def on_error(event: ErrorEvent) -> bool:
        """Log the failure (its type only: a message can quote what the person wrote) and apologise to them.

        A person's turn still held by another worker is no failure of theirs: the update goes back unanswered (the
        webhook POST fails) and Telegram brings it again, once the other worker is done.
        """
        if isinstance(event.exception, cluster.TurnUnavailable):
            log.warning("a person's turn is held elsewhere: the update will come again")
            raise event.exception
        log.error("update failed", extra={"error": type(event.exception).__name__}, exc_info=event.exception)
        source = event.update.message or event.update.callback_query
        person = source.from_user if source is not None else None
        if person is None:
            return True
        participant = await conversation.store.load(person.id)
        lang = participant.language if participant else conversation.default_language
        try:
            await sender.deliver(person.id, Reply((Outgoing(conversation.tr.text(lang, T.ERROR)),)))
        except TelegramAPIError:
            log.warning("could not tell the person about the failure")
        return True

    return dispatcher


def make_bot(
    settings: Settings, token: str, pacing: PaceSends, *, retry: bool = True, metrics: Metrics | None = None
) -> Bot:
    """A Bot on the configured API, paced with every other Bot of the process (and, with `REDIS_URL`, of the bot).

    `retry=False` for the outbox and broadcasts, which schedule their own retries. With `metrics`, every HTTP attempt
    is counted by method and outcome.
    """
    session = LeanSession(api=TelegramAPIServer.from_base(settings.telegram_api_url.rstrip("/")))
    if retry:
        session.middleware(RetryRequests())  # outermost: every retry waits for a send slot again
    session.middleware(pacing)
    if metrics is not None:
        session.middleware(CountCalls(metrics))  # innermost: one count per attempt, after its slot
    return Bot(token, session=session, default=DefaultBotProperties(link_preview_is_disabled=True))


def pacing_for(settings: Settings, redis: Redis | None = None, prefix: str = "") -> PaceSends:
    """The send pace: Telegram's free limit for everything, the paid one for paid broadcasts, and the per-chat
    limit of private chats for both. In this process's memory, or, with `redis`, shared by every worker."""
    if redis is None:
        paid = Pacer(settings.paid_broadcast_rate) if settings.paid_broadcast else None
        chats = ChatPace(settings.private_chat_rate, settings.private_chat_burst)
        return PaceSends(Pacer(settings.send_rate), paid, chats)
    shared_paid = (
        cluster.SharedPacer(redis, prefix, "paid", settings.paid_broadcast_rate) if settings.paid_broadcast else None
    )
    shared_chats = cluster.SharedChatPace(redis, prefix, settings.private_chat_rate, settings.private_chat_burst)
    return PaceSends(cluster.SharedPacer(redis, prefix, "free", settings.send_rate), shared_paid, shared_chats)


@dataclass
class Services:
    """Everything the handlers use, built once."""

    conversation: Conversation
    connector: Connector
    admin: Admin
    composer: Composer
    broadcaster: Broadcaster
    switch: ProgramSwitch
    handoff: Handoff | None = None
    outbox: Outbox | None = None
    #: The staff group's weekly figures (STATS_DIGEST), when there is a staff group and the setting is given.
    digest: WeeklyDigest | None = None
    #: Each person's updates in turn; the retention purge takes its turn in the same queue.
    in_order: OnePersonAtATime = field(default_factory=OnePersonAtATime)
    #: The updates being handled, for shutdown to let them finish.
    handling: Handling = field(default_factory=Handling)

    async def erase_in_turn(self, participant: Participant, why: Erasure) -> bool:
        """Erase a person once whatever of theirs is being handled is done, so no update saves them half-erased."""
        return await self.in_order.run(participant.user_id, lambda: self.conversation.erase(participant, why))


def build_services(
    settings: Settings,
    core: Core,
    store: SqlStore,
    sender: TelegramSender,
    plain_bot: Bot,
    pacing: PaceSends,
    in_order: OnePersonAtATime | None = None,
) -> Services:
    """Every service, wired. `plain_bot` does not retry by itself: the outbox and broadcasts schedule retries.
    `in_order` keeps each person's updates in turn (in this process when not given)."""
    referrals = Referrals(store)
    tickets = Tickets(store)
    connector = Connector(referrals, store, core.translator, core.programs, sender, utc_now, settings.default_language)
    insights = Insights(store.engine, utc_now, core.programs)
    web = WebCommand(SignInLinks(store, utc_now), web_base_url(settings))
    admin = Admin(referrals, core.translator, utc_now, settings.admin_ids, tickets, insights, web)
    broadcasts = Broadcasts(store)
    broadcaster = Broadcaster(
        broadcasts,
        broadcast_sender(plain_bot, paid=settings.paid_broadcast),
        sender,
        pacing.paid or pacing.free,
        core.translator,
        now=utc_now,
        timezone=settings.office_timezone,
        concurrency=settings.broadcast_in_flight(),
        progress_every=settings.broadcast_progress_seconds,
        chats=pacing.chats,
    )
    composer = Composer(
        broadcasts,
        core.translator,
        core.programs,
        utc_now,
        timezone=settings.office_timezone,
        on_submit=broadcaster.wake,
    )
    handoff = outbox = None
    if settings.staff_chat_id is not None:
        staff_api = TelegramStaffApi(plain_bot)
        limits = ChatLimits(
            group_per_window=settings.group_messages_per_window, group_window=settings.group_window_seconds
        )
        # The handoff puts into the outbox and the outbox reports deliveries (to pair messages) and refusals (a
        # topic gone) back to it: the callbacks are bound once both exist.
        outbox = Outbox(
            store,
            staff_api.deliver,
            limits=limits,
            on_sent=lambda entry, message_id: handoff_sent(entry, message_id),
            on_refused=lambda entry, error: handoff_refused(entry, error),
        )
        handoff = Handoff(
            staff_chat_id=settings.staff_chat_id,
            tickets=tickets,
            people=store,
            referrals=referrals,
            translator=core.translator,
            renderer=Renderer(core.translator, core.programs),
            outbox=outbox,
            api=staff_api,
            clock=utc_now,
            admins=settings.admin_ids,
            office=settings.office(),
            staff_language=settings.staff_language,
            note_marker=settings.note_marker,
            remind_after=dt.timedelta(seconds=settings.remind_after_seconds),
        )

        async def handoff_sent(entry: Entry, message_id: int) -> None:
            assert handoff is not None
            await handoff.sent(entry, message_id)

        async def handoff_refused(entry: Entry, error: TelegramAPIError) -> None:
            assert handoff is not None
            await handoff.refused(entry, error)

    subscriptions = Subscriptions(broadcasts, broadcaster)
    access = Access(
        core.translator,
        Renderer(core.translator, core.programs),
        settings.retention_days,
        referrals=referrals,
        tickets=tickets if handoff is not None else None,
        broadcasts=broadcasts,
    )
    conversation = conversation_for(core, store, settings, connector, handoff, subscriptions, access)
    switch = ProgramSwitch(core.programs, Deployment(store), store, broadcasts, composer, core.translator, utc_now)
    services = Services(conversation, connector, admin, composer, broadcaster, switch, handoff, outbox)
    when = settings.digest_time()
    if when is not None and outbox is not None and settings.staff_chat_id is not None:
        services.digest = WeeklyDigest(
            when,
            insights,
            store,
            outbox,
            core.translator,
            chat_id=settings.staff_chat_id,
            language=settings.staff_language,
            clock=utc_now,
        )
    if in_order is not None:
        services.in_order = in_order
    return services


async def run(settings: Settings, *, webhook: bool = False) -> int:
    """`python -m bot` (long polling) or `python -m bot serve --webhook`: check the setup, then serve until stopped.
    Returns the process exit code."""
    logs.configure(settings.log_level)
    logs.set_id_secret(settings.log_id_secret.get_secret_value() if settings.log_id_secret else None)
    if settings.bot_token is None or not settings.bot_token.get_secret_value().strip():
        print(NO_TOKEN, file=sys.stderr)
        return 2
    if webhook and (settings.webhook_url is None or settings.webhook_secret is None):
        print(NO_WEBHOOK, file=sys.stderr)
        return 2
    try:
        core = load_core(settings)
    except Exception as exc:  # a broken data file or catalog: say which, and refuse to start
        print(f"Puente cannot start: {exc}", file=sys.stderr)
        return 4
    return await serve(settings, core, settle_heap=True, webhook=webhook)


async def serve(
    settings: Settings,
    core: Core,
    *,
    handle_signals: bool = True,
    stop: asyncio.Event | None = None,
    settle_heap: bool = False,
    webhook: bool = False,
) -> int:
    """Connect to the Bot API and the store, then long-poll (or, with `webhook`, serve Telegram's webhook) until a
    signal (or `stop`, for tests) ends it.

    A webhook worker with `REDIS_URL` is one of several on one database: each person's turn and Telegram's send
    pace are shared through Redis, and the scheduled jobs run in whichever worker leads (bot/cluster.py).
    `settle_heap` (the bot's own process) freezes what start-up built before the first update: see `_settle_heap`.
    """
    assert settings.bot_token is not None
    logs.guard_third_party()
    token = settings.bot_token.get_secret_value().strip()
    logs.hide(token)  # it is in every Bot API URL a library might log
    try:
        validate_token(token)
    except TokenValidationError:
        print("BOT_TOKEN does not look like a Telegram token (digits, a colon, then letters).", file=sys.stderr)
        return 3
    if settings.redis_url and not webhook:
        log.warning("REDIS_URL is for several webhook workers; long polling is one process and does not use it")
    # What is opened is closed in reverse order, every part of it even when shutting down is itself cancelled
    # (a test's deadline, a second signal): no connection or HTTP session outlives the bot.
    async with contextlib.AsyncExitStack() as resources:
        store = await open_store(settings.database_url)
        resources.push_async_callback(store.close)
        redis: Redis | None = None
        if webhook and settings.redis_url:
            redis = cluster.connect(settings.redis_url)
            resources.push_async_callback(redis.aclose)
        prefix = cluster.key_prefix(token)
        pacing = pacing_for(settings, redis, prefix)
        metrics = Metrics(store_depths(store.engine))
        bot = make_bot(settings, token, pacing, metrics=metrics)
        resources.push_async_callback(bot.session.close)
        try:
            me = await bot.get_me()
        except TelegramUnauthorizedError:
            print("Telegram rejected BOT_TOKEN (401 Unauthorized). Check it with @BotFather.", file=sys.stderr)
            return 3
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]  # "uvloop" or "asyncio"
        log.info("bot starting", extra={"bot": me.username, "program": core.program.id, "loop": loop})
        if not webhook:  # a webhook left set would refuse every getUpdates
            await bot.delete_webhook(drop_pending_updates=False)
        menus = CommandMenus(bot, core.translator, store, settings.default_language)
        await menus.register_defaults()
        sender = TelegramSender(bot, menus, answers_in_response=webhook)
        plain_bot = make_bot(settings, token, pacing, retry=False, metrics=metrics)
        resources.push_async_callback(plain_bot.session.close)
        in_order = cluster.SharedTurns(redis, prefix) if redis is not None else None
        services = build_services(settings, core, store, sender, plain_bot, pacing, in_order)
        await services.switch.restore()
        warn_if_superseded(core.programs, utc_now().date())
        dispatcher = build_dispatcher(services, sender, settings, metrics)

        async def erase_gone_quiet(participant: Participant, why: Erasure) -> bool:
            erased = await services.erase_in_turn(participant, why)
            if erased:
                await menus.clear(participant.chat_id)
            return erased

        retention = Retention(store, erase_gone_quiet, utc_now, dt.timedelta(days=settings.retention_days))
        jobs = _ScheduledJobs(services, retention, menus, settings)
        if redis is None:
            await jobs.start(resources)
        else:
            await jobs.senders(resources, look=True)
            _in_background(resources, cluster.Leader(redis, prefix).run(jobs.lead))
        _in_background(resources, metrics.run(5.0))
        checks = {"database": ops.database_check(store.engine), "telegram": ops.telegram_check(bot)}
        if redis is not None:
            checks["redis"] = ops.redis_check(redis)
        if settings.ops_listen:
            runner = await ops.serve(settings.ops_listen, metrics.registry, checks)
            resources.push_async_callback(runner.cleanup)
            log.info("operations endpoints served", extra={"listen": settings.ops_listen})
        if settings.web_listen:
            console = web_console_for(settings, core, store)
            try:
                console_runner = await web_console.start(console, settings.web_listen)
            except OSError:
                # Several workers with one WEB_LISTEN: the first to start serves the console (its sandboxes and
                # cookie key live in that process); the others go on without it.
                log.warning("web console not served here: its address is taken", extra={"listen": settings.web_listen})
            else:
                resources.push_async_callback(console_runner.cleanup)
                log.info("web console served", extra={"listen": settings.web_listen})
        if stop is not None and not webhook:
            _in_background(resources, _stop_when(stop, dispatcher))
        resources.push_async_callback(services.handling.finish)  # first of all: they use everything above
        if settle_heap:
            _settle_heap()
        if webhook:
            app = ops.app(metrics.registry, checks)
            await _serve_webhook(bot, dispatcher, settings, app, stop=stop, handle_signals=handle_signals)
        else:
            await dispatcher.start_polling(
                bot,
                polling_timeout=settings.polling_timeout,
                allowed_updates=dispatcher.resolve_used_update_types(),
                handle_signals=handle_signals,
                close_bot_session=False,
            )
    return 0


def web_base_url(settings: Settings) -> str:
    return console_url(settings.web_public_url, settings.web_listen, web_console.DEFAULT_LISTEN)


def web_console_for(settings: Settings, core: Core, store: SqlStore) -> web_console.Console:
    """The web console on the bot's store (sign-in links, insights); its preview never touches the store."""
    secret = settings.web_secret.get_secret_value() if settings.web_secret else None
    return web_console.console_for(
        core.programs,
        core.translator,
        core.vocabulary,
        utc_now,
        links=SignInLinks(store, utc_now),
        insights=Insights(store.engine, utc_now, core.programs),
        secret=secret,
        secure=web_base_url(settings).startswith("https://"),
        default_ui=settings.staff_language,
    )


@dataclass
class _ScheduledJobs:
    """What runs beside the handlers: the outbox and the broadcaster (`senders`), and the jobs that must run once
    for the bot (`once`): ticket reminders, the retention purge, the weekly digest, putting back chat menus left
    stale.

    One process runs all of them for its whole life (`start`). Of several webhook workers, every worker sends
    (outbox rows and broadcast recipients are claimed one worker at a time, with a lease: bot/claims.py) and the
    leader alone runs the rest while it leads (`lead`).
    """

    services: Services
    retention: Retention
    menus: CommandMenus
    settings: Settings

    #: Seconds between looks for broadcasts that another worker queued or resumed (an idle broadcaster looks
    #: by itself only every 30 s).
    LOOK_EVERY = 1.0

    async def start(self, resources: contextlib.AsyncExitStack) -> None:
        """Start every job; `resources`, when closed, stops them (the outbox's sends in flight get their grace)."""
        await self.senders(resources)
        await self.once(resources)

    async def senders(self, resources: contextlib.AsyncExitStack, *, look: bool = False) -> None:
        """The outbox and the broadcaster; `look`: wake the broadcaster every `LOOK_EVERY` seconds."""
        services = self.services
        if services.outbox is not None and services.handoff is not None:
            await services.outbox.start()
            resources.push_async_callback(services.outbox.stop)
        await services.broadcaster.start()
        resources.push_async_callback(services.broadcaster.stop)
        if look:
            _in_background(resources, self._look())

    async def once(self, resources: contextlib.AsyncExitStack) -> None:
        services, settings = self.services, self.settings
        _in_background(resources, _restore_menus(self.menus))
        if services.outbox is not None and services.handoff is not None:
            _in_background(resources, _remind(services.handoff, settings.reminder_check_seconds))
        _in_background(resources, self.retention.run(settings.retention_check_seconds))
        if services.digest is not None:
            _in_background(resources, services.digest.run(settings.stats_digest_check_seconds))

    async def lead(self) -> None:
        """Run the once-for-the-bot jobs until cancelled (the lease was lost, or the process stops)."""
        async with contextlib.AsyncExitStack() as running:
            await self.once(running)
            await asyncio.Event().wait()

    async def _look(self) -> None:
        while True:
            await asyncio.sleep(self.LOOK_EVERY)
            self.services.broadcaster.wake()


async def _serve_webhook(
    bot: Bot,
    dispatcher: Dispatcher,
    settings: Settings,
    app: web.Application,
    *,
    stop: asyncio.Event | None,
    handle_signals: bool,
) -> None:
    """aiogram's aiohttp webhook server on `WEBHOOK_LISTEN` (in `app`, beside the operations endpoints),
    registered with Telegram, until a signal or `stop`.

    Each update is handled before its POST is answered (`handle_in_background=False`): Telegram counts an update
    as delivered only on that answer, so one that was being handled when the process died comes again, and the
    processed-update ids make sure it is applied once. A POST without the secret header gets 401 from aiogram.
    The webhook stays registered at shutdown: Telegram keeps the updates until the bot is back. Several workers
    may listen on one port (SO_REUSEPORT): the kernel spreads the connections among them.
    """
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    handler = SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token=secret)
    # Not handler.register(): that also closes the bot's HTTP session when the server stops, and serve() closes
    # it last, after the outbox and broadcasts have stopped sending.
    app.router.add_post(urlsplit(settings.webhook_url).path or "/", handler.handle)
    setup_application(app, dispatcher, bot=bot)
    runner = await ops.serve_on(app, settings.webhook_listen, reuse_port=True)
    try:
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
            max_connections=settings.webhook_max_connections,
        )
        log.info("webhook set", extra={"listen": settings.webhook_listen})
        await until_stopped(stop, handle_signals=handle_signals)
    finally:
        await runner.cleanup()


async def until_stopped(stop: asyncio.Event | None, *, handle_signals: bool) -> None:
    """Wait until `stop` is set or, with `handle_signals`, SIGINT or SIGTERM arrives."""
    stopped = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()


def _settle_heap() -> None:
    """Collect start-up's garbage, then move everything still alive out of the collector's sight.

    Start-up leaves some hundreds of thousands of long-lived objects (aiogram's and pydantic's models, SQLAlchemy,
    the catalogs, the rules). Python's full collection walks all of them each time it runs, which stalled every
    conversation for 110-230 ms a few times a minute under load (`scripts/bench.py --think-ms`); frozen, they are
    never walked again, and a full collection only sees what the bot made since. A frozen object is still freed
    when its last reference goes; only a reference cycle among them would stay, and they live as long as the
    process anyway.
    """
    gc.collect()
    gc.freeze()
    log.debug("heap settled", extra={"frozen": gc.get_freeze_count()})


def _in_background(resources: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` as a task that is cancelled, and waited for, when `resources` close."""
    task = asyncio.create_task(work)

    async def cancel() -> None:
        task.cancel()
        await asyncio.wait({task})

    resources.push_async_callback(cancel)


def warn_if_superseded(programs: Programs, today: dt.date) -> None:
    """Say loudly at startup when the active rules are no longer the ones in force: the bot may be telling old news."""
    later = programs.superseded_by(today)
    if later:
        log.warning(
            "a later ruleset is already in force: switch with /program or PROGRAM",
            extra={"active": programs.active.id, "in_force": [p.id for p in later]},
        )
    log.info(
        "screening with",
        extra={"program": programs.active.id, "as_of": programs.active.ruleset.as_of.isoformat()},
    )


async def _restore_menus(menus: CommandMenus) -> None:
    """Put back the chat menus a failed call or a release left stale, without holding up the start."""
    try:
        await menus.restore()
    except Exception:
        log.exception("chat menus not restored")


async def _stop_when(stop: asyncio.Event, dispatcher: Dispatcher) -> None:
    await stop.wait()
    await dispatcher.stop_polling()


async def _remind(handoff: Handoff, every: float) -> None:
    """Staff get a reminder about tickets waiting too long, every `every` seconds from one `every` after the start."""
    await asyncio.sleep(every)
    await in_rounds(handoff.remind, every, failed="reminder round failed")
