"""The rules API over real HTTP on 127.0.0.1: a subscriber's own rules, ownership, limits.

Ticks go through the service's own engine task (its processor), as the feed's
would, after the bundled replay has finished: the rule fires, is journaled and
planned for its owner alone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.builders import alert_at, tick
from tests.helpers import eventually
from tests.integration.http_service import ADMIN_TOKEN, Service, http_config, http_service

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# The replayed file's last IWM tick is at T0 + 6 min 41 s; these come after it.
LATER = 3600.0


def webpush(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": f"https://push.example.net/send/{endpoint}",
        "keys": {
            "p256dh": "BCIb8MyNfyUdKgJbuyX5buLfLIHFAu9VMCqUGw3y79ar2Ui091Swbyri3bsWsIlMXGTpD8RwR"
            "fmN4KQf366NnDY",
            "auth": "AAAAAAAAAAAAAAAAAAAAAA",
        },
    }


async def sign_up(service: Service, name: str, symbols: list[str]) -> dict[str, str]:
    """A browser-push subscriber, active at once: the headers of their manage token."""
    status, body, _ = await service.post(
        "/api/v1/subscribers", json={"webpush": webpush(name), "symbols": symbols}
    )
    assert status == 201, body
    assert body["manage_url"].endswith(body["manage_token"])
    return {"Authorization": f"Bearer {body['manage_token']}", "X-Subscriber": body["id"]}


async def replayed(service: Service) -> None:
    await eventually(lambda: service.app.processor.ticks >= 5, what="the tick file replayed")


def feed(service: Service, *prices_at: tuple[float, float]) -> None:
    """IWM ticks (price, seconds after T0) through the engine task, as a feed would put them."""
    service.app.processor.process([tick(price, seconds) for price, seconds in prices_at])


async def alerts_of(
    service: Service, rule: str, headers: dict[str, str] | None = None
) -> list[Any]:
    status, body, _ = await service.get("/api/v1/alerts", headers=headers or {})
    assert status == 200, body
    return [alert for alert in body["alerts"] if alert["rule"] == rule]


async def test_a_subscriber_sets_changes_pauses_and_deletes_their_own_rule(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["SPX"])
        status, rule, _ = await service.post(
            "/api/v1/rules",
            headers=ann,
            json={"symbol": "iwm", "condition": "cross_below", "level": 254.2},
        )
        assert status == 201, rule
        rule_id = rule["id"]
        assert rule_id.startswith(ann["X-Subscriber"] + ":")
        assert (rule["owner"], rule["origin"], rule["status"]) == (
            ann["X-Subscriber"],
            "api",
            "active",
        )
        assert rule["description"] == "IWM cross_below 254.20"
        assert rule["definition"] == {"symbol": "iwm", "condition": "cross_below", "level": 254.2}

        # Listed for her, and on her levels; nobody else's levels show it.
        _, listed, _ = await service.get("/api/v1/rules", headers=ann)
        assert [r["id"] for r in listed["rules"]] == [rule_id]
        assert listed["limits"] == {"rules": 50, "symbols": 10}
        _, mine, _ = await service.get("/api/v1/levels", headers=ann)
        assert {lv["rule"]: lv["owner"] for lv in mine["levels"]}[rule_id] == ann["X-Subscriber"]
        _, public, _ = await service.get("/api/v1/levels")
        assert rule_id not in {lv["rule"] for lv in public["levels"]}

        # Dragged on the chart: the level moves; the rule is changed, and starts afresh.
        status, moved, _ = await service.request(
            "PATCH", f"/api/v1/rules/{rule_id}", headers=ann, json={"level": 253.9}
        )
        assert status == 200, moved
        assert moved["description"] == "IWM cross_below 253.90"
        (watched,) = [r for r in service.app.processor.engine.rules if r.id == rule_id]
        assert (watched.level, watched.owner) == (253.9, ann["X-Subscriber"])  # type: ignore[union-attr]

        # A tick that arms it, one that crosses: the alert is hers alone.
        feed(service, (256.0, LATER), (253.5, LATER + 1))
        await eventually(lambda: service.app.journal.alert_count() >= 1)
        (alert,) = await alerts_of(service, rule_id, ann)
        assert (alert["owner"], alert["level"], alert["price"]) == (
            ann["X-Subscriber"],
            253.9,
            253.5,
        )
        assert await alerts_of(service, rule_id) == []  # not on the public read
        deliveries = service.app.journal.deliveries(alert_id=alert["id"])
        assert {(d.subscriber, d.channel) for d in deliveries} == {(ann["X-Subscriber"], "webpush")}

        # Paused, it sees no crossing; resumed, it starts afresh (unarmed).
        status, body, _ = await service.post(f"/api/v1/rules/{rule_id}/pause", headers=ann)
        assert (status, body) == (200, {"rule": rule_id, "status": "paused"})
        feed(service, (256.0, LATER + 2), (253.0, LATER + 3))
        status, body, _ = await service.post(f"/api/v1/rules/{rule_id}/resume", headers=ann)
        assert (status, body) == (200, {"rule": rule_id, "status": "active"})
        feed(service, (253.1, LATER + 4))
        assert len(await alerts_of(service, rule_id, ann)) == 1

        status, _, _ = await service.request("DELETE", f"/api/v1/rules/{rule_id}", headers=ann)
        assert status == 204
        status, body, _ = await service.get(f"/api/v1/rules/{rule_id}", headers=ann)
        assert status == 404
        assert rule_id not in {r.id for r in service.app.processor.engine.rules}
        assert service.app.journal.stored_rules() == []


async def test_another_subscribers_token_never_reaches_a_rule_or_its_alerts(tmp_path: Path) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["IWM"])
        bob = await sign_up(service, "bob", ["IWM"])
        _, rule, _ = await service.post(
            "/api/v1/rules", headers=ann, json={"symbol": "IWM", "condition": "cross_below",
                                                "level": 254.2}
        )  # fmt: skip
        path = f"/api/v1/rules/{rule['id']}"
        body = {"symbol": "IWM", "condition": "cross_below", "level": 1.0}
        for method, where, json in (
            ("GET", path, None),
            ("PUT", path, body),
            ("PATCH", path, {"level": 1.0}),
            ("DELETE", path, None),
            ("POST", path + "/pause", None),
            ("POST", path + "/resume", None),
        ):
            status, answer, _ = await service.request(method, where, headers=bob, json=json)
            assert status == 404, (method, where, answer)
            assert "254.2" not in str(answer)
        _, listed, _ = await service.get("/api/v1/rules", headers=bob)
        assert listed["rules"] == []
        # Ann's rule is as she set it; the admin sees it, and the rules of alerts.toml.
        _, still, _ = await service.get(path, headers=ann)
        assert still["definition"]["level"] == 254.2
        _, everything, _ = await service.get("/api/v1/rules", headers=ADMIN)
        origins = {r["id"]: r["origin"] for r in everything["rules"]}
        assert origins == {rule["id"]: "api", "iwm-below-255": "config", "iwm-above-265": "config"}
        assert everything["limits"] is None
        # Her alert: on her reads, never on Bob's.
        feed(service, (256.0, LATER), (254.0, LATER + 1))
        await eventually(lambda: service.app.journal.alert_count() >= 1)
        assert len(await alerts_of(service, rule["id"], ann)) == 1
        assert await alerts_of(service, rule["id"], bob) == []
        # No token, a forged one: refused, never data.
        assert (await service.get("/api/v1/rules"))[0] == 401
        forged = {"Authorization": "Bearer " + ann["Authorization"][-20:]}
        assert (await service.get("/api/v1/rules", headers=forged))[0] == 401
        # The admin may not edit a rule of alerts.toml through the API.
        status, answer, _ = await service.request(
            "PATCH", "/api/v1/rules/iwm-below-255", headers=ADMIN, json={"level": 250}
        )
        assert status == 409
        assert "alerts.toml" in answer["error"]


def below(**keys: Any) -> dict[str, Any]:
    return {"symbol": "IWM", "condition": "cross_below", **keys}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (below(condition="cross_bellow", level=254), 'condition: expected "cross_below"'),
        (below(), "level: missing; this key is required"),
        (below(level=-3), "level: expected a number > 0"),
        (below(level='sma(0, "5m")'), "level: "),
        (below(condition="moving_up", window="15m"), "percent: moving_up needs one of"),
        (below(level=254, expires="friday"), "expires: expected a time"),
        (below(level=254, levl=3), "levl: unknown key"),
        (below(level="env:HOME"), "level: environment references are for alerts.toml"),
        (below(level=254, symbol="NOPE"), "symbol: NOPE is not watched"),
        (below(level=254, id="mine"), "id: the service names"),
        (["not", "an", "object"], "expected a JSON object"),
    ],
)
async def test_a_bad_rule_is_refused_by_key_and_nothing_is_stored(
    tmp_path: Path, body: Any, message: str
) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["IWM"])
        rules_before = service.app.processor.engine.rules
        status, answer, _ = await service.post("/api/v1/rules", headers=ann, json=body)
        assert status == 400, answer
        assert message in answer["error"]
        assert service.app.journal.stored_rules() == []
        assert service.app.processor.engine.rules == rules_before


async def test_a_subscribers_rules_are_bounded_in_count_and_symbols(tmp_path: Path) -> None:
    config = http_config(tmp_path).replace(
        "rate_limit_burst = 100",
        "rate_limit_burst = 100\nmax_rules_per_subscriber = 2\nmax_symbols_per_subscriber = 1",
    )
    async with http_service(config) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["IWM"])
        known = sorted(service.app.view.known_symbols() - {"IWM"})
        assert known, "the articles name other symbols"

        def rule(symbol: str, level: float) -> dict[str, Any]:
            return {"symbol": symbol, "condition": "cross_below", "level": level}

        assert (await service.post("/api/v1/rules", headers=ann, json=rule("IWM", 254)))[0] == 201
        status, answer, _ = await service.post("/api/v1/rules", headers=ann, json=rule(known[0], 1))
        assert status == 409
        assert "limit: rules on 1 symbols per subscriber (IWM)" in answer["error"]
        assert (await service.post("/api/v1/rules", headers=ann, json=rule("IWM", 250)))[0] == 201
        status, answer, _ = await service.post("/api/v1/rules", headers=ann, json=rule("IWM", 240))
        assert status == 409
        assert "limit: 2 rules per subscriber" in answer["error"]
        assert len(service.app.journal.stored_rules()) == 2
        # The operator's rules have no such bounds.
        status, _, _ = await service.post("/api/v1/rules", headers=ADMIN, json=rule("IWM", 230))
        assert status == 201


async def test_a_rotated_manage_link_stops_working_and_unsubscribing_drops_the_rules(
    tmp_path: Path,
) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["IWM"])
        status, me, _ = await service.get("/api/v1/manage", headers=ann)
        assert (status, me["id"]) == (200, ann["X-Subscriber"])
        _, rule, _ = await service.post(
            "/api/v1/rules", headers=ann, json={"symbol": "IWM", "condition": "cross_below",
                                                "level": 254.2}
        )  # fmt: skip
        status, fresh, _ = await service.post("/api/v1/manage/rotate", headers=ann)
        assert status == 200
        assert fresh["manage_token"] not in ann["Authorization"]
        assert (await service.get("/api/v1/rules", headers=ann))[0] == 401
        new = {"Authorization": f"Bearer {fresh['manage_token']}"}
        _, listed, _ = await service.get("/api/v1/rules", headers=new)
        assert [r["id"] for r in listed["rules"]] == [rule["id"]]
        # Gone with the subscriber: their rules are neither stored nor watched.
        status, _, _ = await service.request(
            "DELETE", f"/api/v1/subscribers/{ann['X-Subscriber']}", headers=ADMIN
        )
        assert status == 204
        assert service.app.journal.stored_rules() == []
        assert rule["id"] not in {r.id for r in service.app.processor.engine.rules}
        assert (await service.get("/api/v1/rules", headers=new))[0] == 401


async def test_rules_set_through_the_api_survive_a_restart_with_their_state(
    tmp_path: Path,
) -> None:
    config = http_config(tmp_path)
    async with http_service(config) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["IWM"])
        # Two ticks below to fire: the first comes before the restart, the second after.
        _, two, _ = await service.post(
            "/api/v1/rules", headers=ann, json={"symbol": "IWM", "condition": "cross_below",
                                                "level": 254.2, "confirm_ticks": 2}
        )  # fmt: skip
        _, paused, _ = await service.post(
            "/api/v1/rules", headers=ann, json={"symbol": "IWM", "condition": "cross_above",
                                                "level": 255.5}
        )  # fmt: skip
        await service.post(f"/api/v1/rules/{paused['id']}/pause", headers=ann)
        feed(service, (256.0, LATER), (254.0, LATER + 1))
        assert await alerts_of(service, two["id"], ann) == []
    async with http_service(config) as service:
        _, listed, _ = await service.get("/api/v1/rules", headers=ann)
        assert {r["id"]: r["status"] for r in listed["rules"]} == {
            two["id"]: "active",
            paused["id"]: "paused",
        }
        # The run of one tick below carried over the restart: one more tick fires it.
        feed(service, (253.8, LATER + 2))
        await eventually(lambda: service.app.journal.alert_count() >= 1)
        (alert,) = await alerts_of(service, two["id"], ann)
        assert alert["price"] == 253.8
        assert await alerts_of(service, paused["id"], ann) == []


async def test_a_dashboard_with_a_manage_token_gets_its_own_alerts_and_no_one_elses(
    tmp_path: Path,
) -> None:
    async with http_service(http_config(tmp_path)) as service:
        await replayed(service)
        ann = await sign_up(service, "ann", ["IWM"])
        bob = await sign_up(service, "bob", ["IWM"])
        _, rule, _ = await service.post("/api/v1/rules", headers=ann, json=below(level=254.2))
        assert service.app.hub is not None
        url = f"ws://127.0.0.1:{service.app.hub.port}"

        async def dashboard(headers: dict[str, str]) -> ClientConnection:
            client = await connect(url, open_timeout=5)
            token = headers["Authorization"].removeprefix("Bearer ")
            await client.send(json.dumps({"op": "subscribe", "symbols": ["SPX"], "manage": token}))
            reply = json.loads(await asyncio.wait_for(client.recv(), 5))
            assert reply["type"] == "subscribed"
            return client

        anns, bobs = await dashboard(ann), await dashboard(bob)
        # Ann's rule fires on IWM, which neither dashboard listed: hers comes all the same.
        feed(service, (256.0, LATER), (254.0, LATER + 1))
        own = json.loads(await asyncio.wait_for(anns.recv(), 5))
        assert (own["type"], own["data"]["rule"]) == ("alert", rule["id"])
        # Then an alert for everyone on SPX: the first thing Bob gets, so Ann's never came.
        public = alert_at(LATER + 2, "SPX")
        service.app.processor.emit([public])
        got = json.loads(await asyncio.wait_for(bobs.recv(), 5))
        assert got["data"]["id"] == public.id
        assert json.loads(await asyncio.wait_for(anns.recv(), 5))["data"]["id"] == public.id
        await anns.close()
        await bobs.close()
