"""The dashboard in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import re
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


async def test_a_trader_sets_drags_and_pauses_their_own_alert_on_the_chart(
    tmp_path: Path, mosquitto: Mosquitto, browser: Browser, smtp_server: SmtpServer
) -> None:
    """A trader's own alert from sign-up to pause, a screenshot of each step in test-artifacts."""
    # SPX replayed in real time from a file (a tick a second) beside IWM live over MQTT.
    spx = tmp_path / "spx.csv"
    spx.write_text(
        "ts,symbol,price,volume\n"
        + "".join(f"2026-02-02T14:30:{s:02d}Z,SPX,{4850 + s / 4},100\n" for s in range(60))
    )
    replay = f'[[sources]]\nkind = "replay"\nname = "spx"\npath = "{spx}"\nspeed = 1\n'
    config = http_config(
        tmp_path, smtp_port=smtp_server.port, sources=mqtt_sources(mosquitto) + replay
    )
    ARTIFACTS.mkdir(exist_ok=True)
    async with http_service(config) as service:
        app = service.app
        await eventually(lambda: app.sources[0].state == "connected", what="MQTT connected")
        # The session so far: three IWM ticks, and five of SPX's replay, before anyone
        # opens the page.
        for second, price in ((1, 258.0), (2, 258.5), (3, 259.0)):
            mosquitto.publish("ticks/IWM", tick_json(price, second))
        await eventually(lambda: app.processor.ticks_by_source["broker"] >= 3, what="IWM ticks")
        await eventually(
            lambda: app.processor.ticks_by_source["spx"] >= 5, within=10, what="SPX replayed"
        )
        replayed = app.processor.ticks_by_source["spx"]
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, permissions=["notifications"], bypass_csp=True
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        async def snap(step: str) -> None:
            await page.screenshot(path=str(ARTIFACTS / f"my-alerts-{step}.png"), full_page=True)

        # 1. Opened mid-replay, the charts draw the session so far: the history comes before
        # the hub's live ticks, which could not have brought as many points by now.
        await page.goto(service.base + "/")
        await page.wait_for_function("window.strykr.state === 'live'")
        assert await page.evaluate("window.strykr.points('SPX')") >= replayed
        await page.wait_for_function("window.strykr.points('IWM') === 3")
        assert await page.evaluate("window.strykr.lastPrice('IWM')") == 259.0
        assert app.processor.ticks_by_source["spx"] < 60  # still replaying
        await snap("1-history")

        # 2. Subscribed by email, confirmed, and back through the mail's manage link.
        await page.fill("#subscribe-email", "trader@example.com")
        await page.click("#subscribe-email-button")
        await eventually(lambda: len(smtp_server.receiver.mails) == 1, what="the confirmation")
        text = smtp_server.receiver.mails[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        confirm = re.search(r"http://127\.0\.0\.1:1(/api/v1/confirm\?token=[\w.-]+)", text)
        manage = re.search(r"http://127\.0\.0\.1:1/\?manage=([\w.-]+)", text)
        assert confirm is not None
        assert manage is not None
        assert (await service.get(confirm.group(1)))[0] == 200
        await page.goto(f"{service.base}/?manage={manage.group(1)}")
        await page.wait_for_function("window.strykr.me !== null && window.strykr.state === 'live'")
        assert "manage=" not in page.url  # kept in the browser, not in the address bar
        await snap("2-manage-link")

        # 3. A click on the chart at 257 opens the dialog; "below" it, as the price is above.
        point = await page.evaluate("window.strykr.pointAt('IWM', 257)")
        await page.mouse.click(point["x"], point["y"])
        await page.locator("#rule-dialog[open]").wait_for()
        assert await page.input_value("#rule-condition") == "cross_below"
        await page.fill("#rule-level", "257")
        await snap("3-dialog")
        await page.click("#rule-create")
        await page.wait_for_function("window.strykr.myRules().length === 1")
        (rule,) = app.journal.stored_rules()
        assert rule.definition == {
            "symbol": "IWM", "condition": "cross_below", "level": 257.0, "frequency": "every_time"
        }  # fmt: skip
        # Drawn beside the Strykr Watch levels of alerts.toml (255, 265), styled apart.
        await page.wait_for_function("window.strykr.levels('IWM') === 3")
        await snap("4-my-alert-on-the-chart")

        # 4. Ticks through Mosquitto: one that arms it (a new rule starts unarmed, see
        # docs/rules.md), one that crosses it: on the page, with a sound and a notification.
        mosquitto.publish("ticks/IWM", tick_json(259.1, 4))
        mosquitto.publish("ticks/IWM", tick_json(256.5, 5))
        item = page.locator("#inbox li")
        await item.wait_for(timeout=2000)
        assert "IWM broke below 257.00 at 256.50" in await item.inner_text()
        heard = await page.evaluate("window.strykr.heard")
        assert heard == {"sounds": 1, "notifications": 1}
        await eventually(lambda: len(smtp_server.receiver.mails) == 2, what="the alert mail")
        alert_mail = smtp_server.receiver.mails[1]
        assert alert_mail.recipients == ["trader@example.com"]
        assert "257.00" in alert_mail.message["Subject"]
        owned = [a for a in app.journal.recent_alerts() if a["rule"] == rule.id]
        assert [(a["price"], a["owner"]) for a in owned] == [(256.5, rule.owner)]
        await snap("5-fired")
        # The README's picture: one's own alert beside the Strykr Watch levels.
        await page.screenshot(
            path=str(ARTIFACTS / "my-alerts.png"),
            clip={"x": 0, "y": 0, "width": 1280, "height": 620},
        )

        # 5. Dragged from 257 to about 256: the rule's level changes through the API.
        start = await page.evaluate("window.strykr.pointAt('IWM', 257)")
        end = await page.evaluate("window.strykr.pointAt('IWM', 256)")
        await page.mouse.move(start["x"], start["y"])
        await page.mouse.down()
        await page.mouse.move(end["x"], end["y"], steps=5)
        await page.mouse.up()
        await page.wait_for_function("window.strykr.myRules()[0].level !== 257")
        headers = {"Authorization": f"Bearer {manage.group(1)}"}
        _, moved, _ = await service.get(f"/api/v1/rules/{rule.id}", headers=headers)
        assert abs(moved["definition"]["level"] - 256.0) < 0.1
        await snap("6-dragged")

        # 6. Paused: the next crossing fires nothing of hers. A Strykr Watch break after it
        # arrives, so hers would have come first.
        await page.click(f'#my-rules li[data-rule="{rule.id}"] button:has-text("Pause")')
        await page.wait_for_function("window.strykr.myRules()[0].status === 'paused'")
        mosquitto.publish("ticks/IWM", tick_json(259.0, 6))
        mosquitto.publish("ticks/IWM", tick_json(255.5, 7))
        mosquitto.publish("ticks/IWM", tick_json(254.0, 8))
        await page.locator("#alerts li", has_text="IWM broke below 255.00").wait_for(timeout=2000)
        assert await page.locator("#inbox li").count() == 1
        assert len([a for a in app.journal.recent_alerts() if a["rule"] == rule.id]) == 1
        await snap("7-paused")

        # Acknowledged, it leaves the list of alerts that fired.
        await page.click("#inbox li button")
        await page.locator("#inbox-panel").wait_for(state="hidden")
        assert errors == []
        await context.close()


async def test_own_alerts_are_set_by_keyboard_alone_and_the_page_fits_a_phone(
    tmp_path: Path, browser: Browser
) -> None:
    async with http_service(http_config(tmp_path, sources="")) as service:
        status, body, _ = await service.post(
            "/api/v1/subscribers",
            json={"webpush": {"endpoint": "https://push.example.net/send/k",
                              "keys": {"p256dh": "BCIb8MyNfyUdKgJbuyX5buLfLIHFAu9VMCqUGw3y79ar2Ui"
                                                 "091Swbyri3bsWsIlMXGTpD8RwRfmN4KQf366NnDY",
                                       "auth": "AAAAAAAAAAAAAAAAAAAAAA"}},
                  "symbols": ["IWM"]},
        )  # fmt: skip
        assert status == 201, body
        context = await browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            bypass_csp=True,
            timezone_id="UTC",
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{service.base}/?manage={body['manage_token']}")
        await page.wait_for_function("window.strykr.me !== null && window.strykr.state === 'live'")
        # Nothing wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await page.focus("#new-rule")
        await page.keyboard.press("Enter")
        await page.locator("#rule-dialog[open]").wait_for()
        await page.select_option("#rule-symbol", "IWM")
        await page.fill("#rule-level", "250.5")
        await page.keyboard.press("Tab")  # to "How often"
        await page.keyboard.press("ArrowDown")  # "only once"
        await page.fill("#rule-expires", "2030-01-04T21:00")  # until a Friday's close
        await page.focus("#rule-create")
        await page.keyboard.press("Enter")
        await page.wait_for_function("window.strykr.myRules().length === 1")
        (rule,) = service.app.journal.stored_rules()
        assert rule.definition == {
            "symbol": "IWM",
            "condition": "cross_below",
            "level": 250.5,
            "frequency": "once",
            "expires": "2030-01-04T21:00:00Z",
        }
        # A new manage link: the page keeps working with it, the old token no longer does.
        await page.click("#rotate-link")
        await page.locator("#manage-link:not([hidden])").wait_for()
        new_url = await page.get_attribute("#manage-link", "href")
        assert new_url is not None
        assert body["manage_token"] not in new_url
        old = {"Authorization": f"Bearer {body['manage_token']}"}
        assert (await service.get("/api/v1/rules", headers=old))[0] == 401
        await page.reload()
        await page.wait_for_function("window.strykr.me !== null && window.strykr.state === 'live'")
        assert await page.evaluate("window.strykr.myRules().length") == 1
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "my-alerts-phone.png"), full_page=True)
        # Candles: the 1 m bars of the history, the levels kept, and back.
        await page.click("#view-candles")
        await page.wait_for_function("window.strykr.view === 'candles'")
        await page.wait_for_function("window.strykr.points('IWM') > 0")
        assert await page.evaluate("window.strykr.levels('IWM')") == 3
        await page.screenshot(path=str(ARTIFACTS / "candles-phone.png"), full_page=True)
        await page.click("#view-line")
        await page.wait_for_function("window.strykr.view === 'line'")
        await page.wait_for_function("window.strykr.points('IWM') > 0")
        assert errors == []
        await context.close()
