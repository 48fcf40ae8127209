"""The subscriptions and read API over real HTTP on 127.0.0.1, with a real SMTP server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.builders import alert_at
from tests.helpers import eventually
from tests.integration.http_service import ADMIN_TOKEN, Service, http_config, http_service
from tests.receivers import SmtpServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WEBPUSH = {
    "endpoint": "https://push.example.net/send/abc",
    "keys": {
        "p256dh": "BCIb8MyNfyUdKgJbuyX5buLfLIHFAu9VMCqUGw3y79ar2Ui091Swbyri3bsWsIlMXGTpD8RwR"
        "fmN4KQf366NnDY",
        "auth": "AAAAAAAAAAAAAAAAAAAAAA",
    },
}


def link_in(text: str, path: str) -> str:
    match = re.search(rf"http://127\.0\.0\.1:1({re.escape(path)}\?token=[\w.-]+)", text)
    assert match, f"no {path} link in {text!r}"
    return match.group(1)


async def replayed(service: Service) -> None:
    await eventually(lambda: service.app.processor.ticks >= 5, what="the tick file replayed")


async def test_email_subscription_is_double_opt_in_and_one_click_unsubscribe_stops_it(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    async with http_service(http_config(tmp_path, smtp_port=smtp_server.port)) as service:
        await replayed(service)
        status, body, _ = await service.post(
            "/api/v1/subscribers", json={"email": "trader@example.com", "symbols": ["iwm"]}
        )
        assert status == 202, body
        assert body["status"] == "pending_confirmation"
        assert body["symbols"] == ["IWM"]
        _, listed, _ = await service.get("/api/v1/subscribers", headers=ADMIN)
        mine = [s["status"] for s in listed["subscribers"] if s["email"] == "trader@example.com"]
        assert mine == ["pending_confirmation"]  # listed once, as pending
        mails = smtp_server.receiver.mails
        assert len(mails) == 1
        assert mails[0].recipients == ["trader@example.com"]
        text = mails[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

        # Nothing but the confirmation goes out before the link is opened.
        app = service.app
        app.processor.emit([alert_at(100.0)])
        await eventually(lambda: app.journal.alert_count() >= 1)
        assert [d for d in app.journal.deliveries() if d.channel == "email"] == []

        status, body, _ = await service.get(link_in(text, "/api/v1/confirm"))
        assert (status, body["status"]) == (200, "active")
        app.processor.emit([alert_at(200.0)])
        await eventually(lambda: len(mails) == 2, what="the alert mail after confirming")
        alert_mail = mails[1].message
        assert alert_mail["Subject"].startswith("IWM broke below 255.00")

        # RFC 8058: the List-Unsubscribe https link, POSTed, with no login.
        unsubscribe = link_in(alert_mail["List-Unsubscribe"], "/api/v1/unsubscribe")
        status, page, _ = await service.get(unsubscribe, headers={"Accept": "text/html"})
        assert status == 200
        assert 'method="post"' in page
        assert any(
            s.id for s in app.audience.subscribers.values() if s.email == "trader@example.com"
        )
        status, body, _ = await service.post(
            unsubscribe,
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (status, body["status"]) == (200, "unsubscribed")
        assert not any(s.email == "trader@example.com" for s in app.audience.subscribers.values())
        app.processor.emit([alert_at(300.0)])
        await eventually(lambda: app.journal.alert_count() >= 3)
        assert len(mails) == 2
        # The link works twice: the answer is the same.
        assert (await service.post(unsubscribe))[0] == 200


async def test_a_browser_push_subscription_is_active_at_once(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        status, body, _ = await service.post(
            "/api/v1/subscribers", json={"webpush": WEBPUSH, "symbols": ["*"]}
        )
        assert status == 201, body
        assert body["status"] == "active"
        assert body["webpush"] == ["push.example.net"]
        stored = service.app.audience.subscribers[body["id"]]
        assert stored.webpush[0].endpoint == WEBPUSH["endpoint"]
        assert body["unsubscribe_url"].startswith("http://127.0.0.1:1/api/v1/unsubscribe?token=")


async def test_subscribing_to_an_article_watches_the_symbols_it_names(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        article = next(a for a in service.app.tracker.store.articles() if "RUT" in a.symbols)
        status, body, _ = await service.post(
            "/api/v1/subscribers",
            json={"webpush": WEBPUSH, "article": article.url or article.source},
        )
        assert status == 201, body
        assert body["symbols"] == article.symbols
        status, body, _ = await service.post(
            "/api/v1/subscribers", json={"webpush": WEBPUSH, "article": "https://nowhere.test/x"}
        )
        assert status == 404
        assert "article" in body["error"]


BAD_BODIES: list[tuple[Any, int, str]] = [
    ([1, 2], 400, "expected a JSON object"),
    ({"email": "a@b.co", "symbols": ["IWM"], "admin": True}, 400, '"admin": unknown field'),
    ({"email": "not an address", "symbols": ["IWM"]}, 400, "is not an email address"),
    (
        {
            "email": "=?UTF-8?Q?=0AReply-To:_a=40attacker.test=0A?=Bcc:victim@example.org",
            "symbols": ["IWM"],
        },
        400,
        "is not a plain email address",
    ),
    (
        {"email": "=?UTF-8?Q?=0ABcc=3Avictim=40x.org?=@example.org", "symbols": ["IWM"]},
        400,
        "it holds an encoded word (=?)",
    ),
    ({"email": "Reader <r@example.com>", "symbols": ["IWM"]}, 400, "not a plain email address"),
    ({"email": "a@b.co", "symbols": ["TSLA"]}, 400, "symbols[0]: TSLA is not watched here"),
    ({"email": "a@b.co", "symbols": []}, 400, "symbols: expected a list of 1 to 64"),
    ({"email": "a@b.co", "symbols": ["IWM"] * 65}, 400, "symbols: expected a list of 1 to 64"),
    ({"symbols": ["IWM"]}, 400, "give an email, a webpush subscription or push URLs"),
    ({"email": "a@b.co"}, 400, "symbols: expected a list of symbols"),
    ({"email": "a@b.co", "symbols": ["IWM"], "kinds": ["moon"]}, 400, "kinds: expected"),
    ({"webpush": {"endpoint": "http://x.test/"}, "symbols": ["IWM"]}, 400, "https URL"),
    *(
        ({"webpush": {**WEBPUSH, "endpoint": endpoint}, "symbols": ["IWM"]}, 400, refusal)
        for endpoint, refusal in [
            ("https://127.0.0.1:8443/push", "127.0.0.1 is a loopback address"),
            ("https://[::1]/push", "::1 is a loopback address"),
            ("https://[::ffff:127.0.0.1]/push", "127.0.0.1 is a loopback address"),
            ("https://10.0.0.8/push", "10.0.0.8 is a private address"),
            ("https://192.168.1.1/push", "192.168.1.1 is a private address"),
            ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local"),
            ("https://100.64.0.1/push", "100.64.0.1 is a private address"),
            ("https://0.0.0.0/push", "0.0.0.0 is a reserved address"),
            ("https://localhost/push", '"localhost" is not a public host name'),
            ("https://printer.local/push", '"printer.local" is not a public host name'),
            ("https://vm/push", '"vm" is not a public host name'),
            ("https://user:pw@push.example.net/push", "no user or password"),
            ("https://rebind.example.net/push", '"rebind.example.net" resolves to a loopback'),
            ("https://inside.example.net/push", '"inside.example.net" resolves to a private'),
            ("https://nowhere.invalid/push", '"nowhere.invalid" does not resolve'),
        ]
    ),
    ({"push": ["ntfy://ntfy.sh/topic"], "symbols": ["IWM"]}, 403, "need an admin token"),
    ({"email": "a@b.co", "symbols": ["IWM"]}, 422, "does not send email"),
]


@pytest.mark.parametrize(("body", "status", "error"), BAD_BODIES)
async def test_bad_subscriptions_get_a_json_error_that_says_what_is_wrong(
    tmp_path: Path, body: Any, status: int, error: str
) -> None:
    async with http_service(http_config(tmp_path)) as service:
        got, reply, headers = await service.post("/api/v1/subscribers", json=body)
        assert (got, headers["Content-Type"]) == (status, "application/json; charset=utf-8")
        assert error in reply["error"]
        assert "Traceback" not in reply["error"]
        assert service.app.journal.subscribers() == []


async def test_malformed_requests_get_json_errors_never_a_traceback(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        cases = [
            (
                "POST",
                "/api/v1/subscribers",
                {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
                400,
                "not valid JSON",
            ),
            (
                "POST",
                "/api/v1/subscribers",
                {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
                400,
                "not UTF-8",
            ),
            (
                "POST",
                "/api/v1/subscribers",
                {"data": b"[" * 5000, "headers": {"Content-Type": "application/json"}},
                400,
                "nested too deeply",
            ),
            (
                "POST",
                "/api/v1/subscribers",
                {"data": b"email=x", "headers": {"Content-Type": "text/plain"}},
                415,
                "application/json",
            ),
            ("POST", "/api/v1/subscribers", {"json": {"email": "x" * 20_000}}, 413, "too large"),
            ("GET", "/api/v1/nothing", {}, 404, "no such endpoint"),
            ("PUT", "/api/v1/levels", {}, 405, "method PUT not allowed"),
            ("GET", "/api/v1/confirm?token=forged.token", {}, 400, "not a valid confirm link"),
            ("POST", "/api/v1/unsubscribe", {}, 400, "not a valid unsubscribe link"),
            ("GET", "/api/v1/alerts?limit=0", {}, 400, "limit"),
            ("GET", "/api/v1/alerts?since=yesterday-ish", {}, 400, "since"),
            ("GET", "/api/v1/alerts?since=00000000000000000000", {}, 404, "no alert"),
            ("GET", "/api/v1/levels?symbol=%20bad%20sym%20", {}, 400, "symbol"),
        ]
        for method, path, kwargs, status, error in cases:
            got, body, _ = await service.request(method, path, **kwargs)
            assert got == status, (method, path, body)
            assert error in body["error"], (method, path, body)


async def test_a_confirm_token_does_not_unsubscribe_and_the_reverse(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        status, body, _ = await service.post(
            "/api/v1/subscribers", json={"webpush": WEBPUSH, "symbols": ["IWM"]}
        )
        token = body["unsubscribe_url"].split("token=")[1]
        status, body, _ = await service.get(f"/api/v1/confirm?token={token}")
        assert status == 400


async def test_admins_list_and_delete_subscribers_others_cannot(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        _, created, _ = await service.post(
            "/api/v1/subscribers", json={"webpush": WEBPUSH, "symbols": ["IWM"]}
        )
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": "Basic x"},
        ):
            status, body, response_headers = await service.get(
                "/api/v1/subscribers", headers=headers
            )
            assert status == 401
            assert "admin token" in body["error"]
            assert response_headers["WWW-Authenticate"].startswith("Bearer")
            status, _, _ = await service.request(
                "DELETE", f"/api/v1/subscribers/{created['id']}", headers=headers
            )
            assert status == 401
        status, body, _ = await service.get("/api/v1/subscribers", headers=ADMIN)
        assert status == 200
        by_id = {s["id"]: s for s in body["subscribers"]}
        assert by_id["desk"]["origin"] == "config"
        assert by_id["desk"]["webhook"] == "http://127.0.0.1"  # redacted to scheme://host
        assert by_id[created["id"]]["origin"] == "api"

        status, body, _ = await service.request("DELETE", "/api/v1/subscribers/desk", headers=ADMIN)
        assert status == 409
        assert "alerts.toml" in body["error"]
        status, _, _ = await service.request("DELETE", "/api/v1/subscribers/nobody", headers=ADMIN)
        assert status == 404
        status, _, _ = await service.request(
            "DELETE", f"/api/v1/subscribers/{created['id']}", headers=ADMIN
        )
        assert status == 204
        assert created["id"] not in service.app.audience.subscribers

        # An admin may add apprise URLs (they make the server call other hosts).
        status, body, _ = await service.post(
            "/api/v1/subscribers",
            json={"push": ["ntfy://ntfy.sh/strykr-test"], "symbols": ["IWM"]},
            headers=ADMIN,
        )
        assert status == 201
        assert body["push"] == ["ntfy://ntfy.sh"]


async def test_without_admin_tokens_the_admin_api_is_off(tmp_path: Path) -> None:
    config = http_config(tmp_path).replace(f'admin_tokens = ["{ADMIN_TOKEN}"]', "")
    async with http_service(config) as service:
        status, body, _ = await service.get("/api/v1/subscribers", headers=ADMIN)
        assert status == 403
        assert "admin_tokens" in body["error"]


async def test_public_endpoints_are_rate_limited_per_client(tmp_path: Path) -> None:
    config = http_config(tmp_path).replace(
        "rate_limit_per_minute = 600", "rate_limit_per_minute = 1"
    )
    config = config.replace("rate_limit_burst = 100", "rate_limit_burst = 2")
    async with http_service(config) as service:
        body = {"webpush": WEBPUSH, "symbols": ["IWM"]}
        statuses = [(await service.post("/api/v1/subscribers", json=body))[0] for _ in range(2)]
        assert statuses == [201, 201]
        status, reply, headers = await service.post("/api/v1/subscribers", json=body)
        assert status == 429
        assert "too many requests" in reply["error"]
        assert 1 <= int(headers["Retry-After"]) <= 60
        # Reads are not limited.
        assert (await service.get("/api/v1/levels"))[0] == 200
        assert len(service.app.journal.subscribers()) == 2


async def test_read_api_levels_alerts_and_latest_article(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await replayed(service)
        await eventually(lambda: service.app.journal.alert_count() >= 2, what="alerts journaled")
        status, body, _ = await service.get("/api/v1/levels?symbol=IWM")
        assert status == 200
        assert {(lv["level"], lv["side"], lv["origin"]) for lv in body["levels"]} == {
            (255.0, "support", "config"),
            (265.0, "resistance", "config"),
        }

        status, body, _ = await service.get("/api/v1/alerts?symbol=IWM")
        alerts = body["alerts"]
        assert status == 200
        assert len(alerts) == service.app.journal.alert_count()
        assert [a["kind"] for a in alerts][:2] == ["break_above", "break_below"]
        status, body, _ = await service.get(f"/api/v1/alerts?since={alerts[0]['id']}")
        assert [a["id"] for a in body["alerts"]] == [a["id"] for a in alerts[1:]]
        status, body, _ = await service.get("/api/v1/alerts?limit=1")
        assert [a["id"] for a in body["alerts"]] == [alerts[-1]["id"]]
        status, body, _ = await service.get(f"/api/v1/alerts?since={alerts[1]['at']}")
        assert next(a["id"] for a in body["alerts"]) == alerts[1]["id"]
        status, body, _ = await service.get("/api/v1/alerts?symbol=SPX")
        assert body["alerts"] == []

        status, body, _ = await service.get("/api/v1/articles/latest?symbol=IWM")
        assert status == 200
        assert body["article"]["bias"] == "bearish"
        status, body, _ = await service.get("/api/v1/articles/latest?symbol=BTC")
        assert status == 404
        assert "BTC" in body["error"]
        status, body, _ = await service.get("/api/v1/articles/latest")
        assert set(body["articles"]) >= {"IWM", "RUT", "SPX"}


async def test_static_subscriber_unsubscribes_through_its_link_and_stays_out(
    tmp_path: Path,
) -> None:
    async with http_service(http_config(tmp_path)) as service:
        url, _ = service.app.links.unsubscribe("desk")
        status, body, _ = await service.post(url.removeprefix("http://127.0.0.1:1"))
        assert (status, body["status"]) == (200, "unsubscribed")
        assert "desk" not in service.app.audience.subscribers
        service.app.audience.reload()
        assert "desk" not in service.app.audience.subscribers
    # and after a restart, with the same journal
    async with http_service(http_config(tmp_path)) as service:
        assert "desk" not in service.app.audience.subscribers


async def test_push_endpoints_are_limited_to_the_allowed_hosts_when_some_are_set(
    tmp_path: Path,
) -> None:
    extra = '[push]\nendpoint_hosts = ["fcm.googleapis.com"]\n'
    config = http_config(tmp_path).replace("[push]\n", extra, 1)
    async with http_service(config) as service:
        subscribe = {"webpush": WEBPUSH, "symbols": ["IWM"]}
        status, body, _ = await service.post("/api/v1/subscribers", json=subscribe)
        assert status == 400
        assert "is not one of the push services allowed here" in body["error"]
        fcm = {**WEBPUSH, "endpoint": "https://fcm.googleapis.com/fcm/send/abc"}
        status, body, _ = await service.post(
            "/api/v1/subscribers", json={"webpush": fcm, "symbols": ["IWM"]}
        )
        assert (status, body["webpush"]) == (201, ["fcm.googleapis.com"])


async def test_a_push_endpoint_whose_name_cannot_be_resolved_now_is_a_503(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        endpoint = {**WEBPUSH, "endpoint": "https://dns-down.example.net/push"}
        status, body, headers = await service.post(
            "/api/v1/subscribers", json={"webpush": endpoint, "symbols": ["IWM"]}
        )
        assert (status, headers["Retry-After"]) == (503, "30")
        assert "cannot be resolved just now" in body["error"]
        assert service.app.journal.subscribers() == []


async def test_admins_pause_and_resume_a_rule_and_a_restart_keeps_it_paused(
    tmp_path: Path,
) -> None:
    def statuses(body: Any) -> dict[str, str]:
        return {level["rule"]: level["status"] for level in body["levels"]}

    config = http_config(tmp_path)
    async with http_service(config) as service:
        path = "/api/v1/rules/iwm-below-255/pause"
        status, body, _ = await service.post(path)
        assert status == 401
        status, body, _ = await service.post("/api/v1/rules/no-such-rule/pause", headers=ADMIN)
        assert status == 404
        assert "no-such-rule" in body["error"]
        status, body, _ = await service.post(path, headers=ADMIN)
        assert (status, body) == (200, {"rule": "iwm-below-255", "status": "paused"})
        _, levels, _ = await service.get("/api/v1/levels")
        assert statuses(levels) == {"iwm-below-255": "paused", "iwm-above-265": "active"}
    # Started again on the same journal: the pause is part of the engine's saved state.
    async with http_service(config) as service:
        _, levels, _ = await service.get("/api/v1/levels")
        assert statuses(levels)["iwm-below-255"] == "paused"
        status, body, _ = await service.post("/api/v1/rules/iwm-below-255/resume", headers=ADMIN)
        assert (status, body) == (200, {"rule": "iwm-below-255", "status": "active"})


async def test_history_gives_the_session_so_far_with_its_alerts(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await eventually(lambda: service.app.journal.alert_count() >= 3, what="the replay's alerts")
        _, settings, _ = await service.get("/api/v1/dashboard")
        assert settings["history"] == ["1s", "1m"]
        status, body, _ = await service.get("/api/v1/history?symbol=iwm&interval=1m")
        assert status == 200, body
        start = 1770042600  # 2026-02-02T14:30:00Z
        assert body["bars"] == [
            {"time": start, "open": 259.63, "high": 265.2, "low": 254.6, "close": 254.6,
             "volume": 1200.0},
            {"time": start + 360, "open": 256.0, "high": 256.0, "low": 254.5, "close": 254.5,
             "volume": 100.0},
        ]  # fmt: skip
        assert [(a["kind"], a["price"]) for a in body["alerts"]] == [
            ("break_above", 265.2),
            ("break_below", 254.6),
            ("break_below", 254.5),
        ]
        _, later, _ = await service.get(
            "/api/v1/history?symbol=IWM&interval=1s&since=2026-02-02T14:30:10Z"
        )
        assert [bar["close"] for bar in later["bars"]] == [254.6, 256.0, 254.5]
        for query, message in (
            ("interval=1m", "symbol: required"),
            ("symbol=IWM&interval=5m", "interval: '5m' is not kept; one of 1s, 1m"),
            ("symbol=IWM&since=yesterday", "since: expected a time"),
        ):
            status, body, _ = await service.get(f"/api/v1/history?{query}")
            assert status == 400
            assert message in body["error"]
        _, empty, _ = await service.get("/api/v1/history?symbol=SPX")
        assert (empty["interval"], empty["bars"], empty["alerts"]) == ("1s", [], [])


async def test_the_dashboard_can_be_installed_its_manifest_and_icons_are_served(
    tmp_path: Path,
) -> None:
    async with http_service(http_config(tmp_path, sources="")) as service:
        status, page, _ = await service.get("/")
        assert status == 200
        assert '<link rel="manifest" href="/manifest.webmanifest">' in page
        async with service.client.get(service.base + "/manifest.webmanifest") as response:
            assert response.status == 200
            assert response.content_type == "application/manifest+json"
            manifest = await response.json(content_type=None)
        for icon in manifest["icons"]:
            async with service.client.get(service.base + icon["src"]) as response:
                assert response.status == 200, icon
                assert response.content_type == icon["type"]
                assert len(await response.read()) > 200
