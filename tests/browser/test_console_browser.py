"""The web console in a real browser (headless Debian Chromium at a phone's width): the preview through a whole
questionnaire in Creole, the insights behind a one-time link, and the texts page. Screenshots are left in
tests/browser/screenshots/ (or $PUENTE_SCREENSHOTS) for review."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import RunningConsole

pytestmark = pytest.mark.slow


def submit(driver: Any, element: Any) -> None:
    """Click a submit button and wait for the page it leads to (POST, then the redirect's GET)."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def left(_: Any) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or "does not belong to the document" mid-navigation
            return True
        return False

    WebDriverWait(driver, 15).until(left)
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def live_buttons(driver: Any) -> list[Any]:
    return [b for b in driver.find_elements(By.CSS_SELECTOR, ".bubble.bot .tg-button") if b.is_enabled()]


def answers(driver: Any) -> list[str]:
    return [dd.text for dd in driver.find_elements(By.CSS_SELECTOR, "#answers dd")]


def last_bot_text(driver: Any) -> str:
    return str(driver.find_elements(By.CSS_SELECTOR, ".bubble.bot .text")[-1].text)


def fetch(driver: Any, url: str) -> tuple[int, str, str]:
    """GET with the browser's session cookie (a download the browser would save): status, type, body."""
    cookie = driver.get_cookie("puente_console")
    request = urllib.request.Request(url, headers={"Cookie": f"puente_console={cookie['value']}"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def test_preview_in_creole_to_a_result_then_back_and_another_language(
    console: RunningConsole, browser: Any, screenshots: Path
) -> None:
    """A whole questionnaire in Creole: buttons, a typed answer and /back; the side panel shows the answers and the
    rules behind the result; the language switch answers in Spanish; the transcript downloads."""
    browser.get(f"{console.url}/preview")
    Select(browser.find_element(By.ID, "start-lang")).select_by_value("ht")
    Select(browser.find_element(By.ID, "start-program")).select_by_value("venezuela-2022")
    submit(browser, browser.find_element(By.ID, "start"))
    assert "Kreyòl" in browser.page_source or "kreyòl" in last_bot_text(browser)

    submit(browser, live_buttons(browser)[0])  # the privacy notice: accept
    submit(browser, live_buttons(browser)[0])  # the first question, by its button
    assert len(answers(browser)) == 1
    label = live_buttons(browser)[0].text
    typed = browser.find_element(By.ID, "typed")
    typed.send_keys(label)  # the second question, answered in words
    submit(browser, browser.find_element(By.ID, "send"))
    assert len(answers(browser)) == 2
    browser.find_element(By.ID, "typed").send_keys("/back")
    submit(browser, browser.find_element(By.ID, "send"))
    assert len(answers(browser)) == 1, "/back takes the last answer away"

    for _ in range(30):
        if browser.find_elements(By.ID, "outcome"):
            break
        submit(browser, live_buttons(browser)[0])
    assert browser.find_element(By.ID, "outcome").text == "pa kalifye"
    rules = [code.text for code in browser.find_elements(By.CSS_SELECTOR, "#decision .rule")]
    assert "B1" in rules
    assert "pa kalifye" in browser.find_element(By.ID, "chat").text
    browser.execute_script("document.getElementById('chat').scrollIntoView()")
    browser.save_screenshot(str(screenshots / "preview-creole-result.png"))
    browser.execute_script("document.querySelector('.panel').scrollIntoView()")
    browser.save_screenshot(str(screenshots / "preview-creole-panel.png"))

    Select(browser.find_element(By.ID, "switch-lang")).select_by_value("es")
    submit(browser, browser.find_element(By.ID, "switch"))
    assert "Listo: te escribiré en español." in browser.find_element(By.ID, "chat").text
    assert browser.find_element(By.ID, "outcome").text == "no califica"
    browser.save_screenshot(str(screenshots / "preview-spanish.png"))

    status, kind, transcript = fetch(browser, f"{console.url}/preview/transcript.txt")
    assert status == 200
    assert kind.startswith("text/plain")
    assert "YOU: /back" in transcript
    assert "Listo: te escribiré en español." in transcript


def test_insights_with_a_one_time_link(console: RunningConsole, browser: Any, screenshots: Path) -> None:
    """Insights need a sign-in; a one-time link signs in once and shows the seeded counts (small ones as <5), with
    charts and a CSV; the same link a second time is refused."""
    browser.get(f"{console.url}/insights")
    assert browser.current_url.endswith("/signin")

    link = console.issue_link()
    browser.get(link)
    submit(browser, browser.find_element(By.ID, "sign-in"))
    assert browser.current_url.endswith("/insights")
    summary = browser.find_element(By.ID, "summary").text
    assert "Opened the bot: 8" in summary
    assert "declined the notice: <5" in summary
    assert "Accepted the notice: 6 people · got a result: 6" in summary
    assert "not eligible: 6" in summary
    assert len(browser.find_elements(By.CSS_SELECTOR, ".charts img")) == 4
    browser.save_screenshot(str(screenshots / "insights.png"))

    status, kind, csv = fetch(browser, f"{console.url}/insights.csv?period=30d")
    assert status == 200
    assert kind.startswith("text/csv")
    assert csv.startswith("period,from,to,program,section")
    assert ",funnel,started,,8" in csv

    browser.get(f"{console.url}/texts?all=1")
    assert browser.find_element(By.ID, "k-web.link").text.count("{url}") == 3
    browser.save_screenshot(str(screenshots / "texts.png"))

    submit(browser, browser.find_element(By.ID, "sign-out"))
    browser.get(link)
    submit(browser, browser.find_element(By.ID, "sign-in"))
    assert browser.find_element(By.ID, "refused").is_displayed()
    browser.get(f"{console.url}/insights")
    assert browser.current_url.endswith("/signin")
