"""A real console (on a seeded SQLite database, in a thread with its own event loop) and headless Debian Chromium
driven by chromedriver. Skipped, saying why, when /usr/bin/chromium or /usr/bin/chromedriver is missing
(`.ci/run` installs them)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.app import load_core
from bot.config import Settings
from bot.storage import SqlStore, open_store
from bot.web import app as web_console
from bot.web.links import SignInLinks
from tests.browser.seed import seed_people

#: Where the run leaves its screenshots for review (gitignored); PUENTE_SCREENSHOTS moves them.
SCREENSHOTS = Path(os.environ.get("PUENTE_SCREENSHOTS", Path(__file__).parent / "screenshots"))
#: A phone's width and height, in CSS pixels.
PHONE = (390, 844)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

Result = TypeVar("Result")


@dataclass
class RunningConsole:
    url: str
    loop: asyncio.AbstractEventLoop
    links: SignInLinks

    def run(self, work: Coroutine[Any, Any, Result]) -> Result:
        """Run a coroutine on the console's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)

    def issue_link(self) -> str:
        return f"{self.url}/login/{self.run(self.links.issue())}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    """The console on 127.0.0.1 with 6 scripted people who got a result and 2 who declined the notice."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    database = tmp_path_factory.mktemp("console") / "console.db"
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{database}", staff_language="en")
    port = _free_port()

    async def up() -> tuple[SqlStore, web_console.Console, Any]:
        core = load_core(settings)
        store = await open_store(settings.database_url)
        await seed_people(core, store, 6, declining=2)
        from bot.app import web_console_for

        built = web_console_for(settings, core, store)
        runner = await web_console.start(built, f"127.0.0.1:{port}")
        return store, built, runner

    store, built, runner = asyncio.run_coroutine_threadsafe(up(), loop).result(timeout=60)
    assert built.links is not None
    running = RunningConsole(f"http://127.0.0.1:{port}", loop, built.links)
    try:
        yield running
    finally:
        running.run(runner.cleanup())
        running.run(store.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium at a phone's size."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={PHONE[0]},{PHONE[1]}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # Headless windows are at least 500 px wide: the page is laid out at a phone's width as a phone would.
    metrics = {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
