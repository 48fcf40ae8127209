"""The dashboard in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.builders import alert_at
from tests.helpers import eventually
from tests.integration.http_service import REPO, http_config, http_service
from tests.integration.test_ops import mqtt_sources, tick_json
from tests.mosquitto import Mosquitto
from tests.receivers import SmtpServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
# Without these, Chromium tries to reach Google's hosts on start (the network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids.


def chromium() -> str:
    """Debian's Chromium; Playwright's own browser download is not used."""
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if found is None:
        pytest.fail("Chromium is missing: make test installs it (apt-get install chromium)")
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_dashboard_charts_ticks_lists_alerts_within_a_second_and_shows_levels(
    tmp_path: Path, mosquitto: Mosquitto, browser: Browser
) -> None:
    config = http_config(tmp_path, sources=mqtt_sources(mosquitto))
    async with http_service(config) as service:
        source = service.app.sources[0]
        await eventually(lambda: source.state == "connected", what="MQTT connected")
        page: Page = await browser.new_page(
            viewport={"width": 1280, "height": 900}, bypass_csp=True
        )
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(service.base + "/")
        await page.wait_for_function("window.strykr && window.strykr.state === 'live'")
        assert await page.text_content("#connection") == "live"
        # The levels of alerts.toml, on the chart: support and resistance.
        assert await page.evaluate("window.strykr.levels('IWM')") == 2
        # The article card of the latest article on IWM.
        card = page.locator('article[data-symbol="IWM"] .article')
        assert "bearish" in (await card.inner_text())

        mosquitto.publish("ticks/IWM", tick_json(258.25, 1))
        await page.wait_for_function("window.strykr.lastPrice('IWM') === 258.25")
        assert await page.evaluate("window.strykr.points('IWM')") == 1
        mosquitto.publish("ticks/IWM", tick_json(259.5, 2))
        await page.wait_for_function("window.strykr.points('IWM') === 2")
        price = page.locator('article[data-symbol="IWM"] .price')
        assert await price.inner_text() == "259.50"

        mosquitto.publish("ticks/IWM", tick_json(254.6, 3))
        item = page.locator("#alerts li.break_below")
        await item.wait_for(timeout=1000)  # the bound: listed within a second
        assert "IWM broke below 255.00 at 254.60" in await item.inner_text()
        assert await page.evaluate("window.strykr.markers('IWM')") == 1

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
        assert errors == []


async def test_dashboard_reconnects_with_since_and_misses_no_alert(
    tmp_path: Path, browser: Browser
) -> None:
    async with http_service(http_config(tmp_path, sources="")) as service:
        app = service.app
        assert app.hub is not None
        page = await browser.new_page(bypass_csp=True)
        await page.goto(service.base + "/")
        await page.wait_for_function("window.strykr.state === 'live'")
        app.processor.emit([alert_at(10.0)])
        await page.locator("#alerts li").first.wait_for(timeout=2000)
        # Drop every dashboard connection; an alert fires while the page is away.
        app.hub.disconnect_all(1012)
        await page.wait_for_function("window.strykr.state !== 'live'")
        app.processor.emit([alert_at(20.0)])
        await page.wait_for_function("window.strykr.state === 'live'", timeout=5000)
        await page.wait_for_function("document.querySelectorAll('#alerts li').length === 2")
        ids = await page.eval_on_selector_all(
            "#alerts li", "items => items.map(i => i.dataset.alertId)"
        )
        assert ids == [alert_at(20.0).id, alert_at(10.0).id]


async def test_the_subscribe_form_sends_an_email_subscription(
    tmp_path: Path, browser: Browser, smtp_server: SmtpServer
) -> None:
    config = http_config(tmp_path, smtp_port=smtp_server.port, sources="")
    async with http_service(config) as service:
        page = await browser.new_page(bypass_csp=True)
        await page.goto(service.base + "/")
        await page.wait_for_function("window.strykr.state === 'live'")
        await page.fill("#subscribe-email", "desk@example.com")
        await page.click("#subscribe-email-button")
        await page.wait_for_function(
            "document.querySelector('#subscribe-result').textContent.includes('desk@example.com')"
        )
        assert [m.recipients for m in smtp_server.receiver.mails] == [["desk@example.com"]]
        pending = service.app.journal.subscribers()
        assert [(s.email, s.confirmed) for s in pending] == [("desk@example.com", False)]
