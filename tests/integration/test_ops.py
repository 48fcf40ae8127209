"""/metrics, /healthz, /readyz and the stale-feed rule, against a real Mosquitto broker."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.helpers import eventually
from tests.integration.http_service import Service, http_config, http_service
from tests.mosquitto import Mosquitto
from tests.receivers import HttpReceiver


def mqtt_sources(broker: Mosquitto) -> str:
    return (
        f'[[sources]]\nkind = "mqtt"\nname = "broker"\nurl = "{broker.url}"\n'
        'topic = "ticks/#"\nqos = 1\nclient_id = "strykr-ops-test"\n'
    )


def ops_webhook(receiver: HttpReceiver, symbols: str) -> str:
    """A subscriber of alerts.toml whose webhook is ``receiver``'s /hook."""
    return (
        f'[[subscribers]]\nid = "ops"\nwebhook = "{receiver.url("/hook")}"\n'
        f'webhook_secret = "ops-webhook-secret-0123"\nsymbols = {symbols}\n'
    )


async def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text, headers = await service.get("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def tick_json(price: float, second: int) -> str:
    return json.dumps({"symbol": "IWM", "price": price, "ts": f"2026-02-02T14:30:{second:02d}Z"})


async def test_metrics_count_ticks_rejections_alerts_deliveries_and_clients(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    extra = ops_webhook(http_receiver, '["IWM"]')
    config = http_config(tmp_path, sources=mqtt_sources(mosquitto), extra=extra)
    async with http_service(config) as service:
        app = service.app
        await eventually(lambda: app.sources[0].state == "connected", what="MQTT connected")
        assert app.hub is not None
        async with connect(f"ws://127.0.0.1:{app.hub.port}") as dashboard:
            await dashboard.send(json.dumps({"op": "subscribe", "symbols": ["*"]}))
            await dashboard.recv()
            mosquitto.publish(
                "ticks/IWM", tick_json(256.0, 1), "not json", tick_json(254.5, 2), tick_json(-3, 3)
            )
            await eventually(lambda: len(http_receiver.posts("/hook")) == 1, what="the webhook")
            await eventually(lambda: app.workers.outcomes["webhook", "sent"] == 1)
            metrics = await scrape(service)
            assert metrics["strykr_ws_clients", ()] == 1

        assert metrics["strykr_ticks_total", (("source", "broker"),)] == 2
        rejected = {
            labels: value
            for (name, labels), value in metrics.items()
            if name == "strykr_ticks_rejected_total"
        }
        assert sum(rejected.values()) == 2, rejected
        assert metrics["strykr_alerts_total", (("kind", "break_below"), ("symbol", "IWM"))] == 1
        assert metrics["strykr_deliveries_total", (("channel", "webhook"), ("status", "sent"))] == 1
        assert metrics["strykr_delivery_pending", ()] == 0
        assert metrics["strykr_tick_to_alert_seconds_count", ()] == 1
        assert 0 < metrics["strykr_tick_to_alert_seconds_sum", ()] < 5
        assert 0 <= metrics["strykr_last_tick_age_seconds", (("symbol", "IWM"),)] < 60
        assert metrics["strykr_source_up", (("source", "broker"),)] == 1


async def test_readyz_follows_the_feed_and_healthz_only_the_process(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    async with http_service(http_config(tmp_path, sources=mqtt_sources(mosquitto))) as service:
        source = service.app.sources[0]
        await eventually(lambda: source.state == "connected", what="MQTT connected")
        status, body, _ = await service.get("/readyz")
        assert (status, body["status"]) == (200, "ready")

        mosquitto.stop()
        await eventually(lambda: source.state == "disconnected", what="MQTT down")
        status, body, _ = await service.get("/readyz")
        assert status == 503
        assert body["reasons"] == ["source broker: disconnected"]
        assert (await service.get("/healthz"))[0] == 200
        metrics = await scrape(service)
        assert metrics["strykr_source_up", (("source", "broker"),)] == 0

        mosquitto.start()
        await eventually(lambda: source.state == "connected", within=15, what="MQTT back")
        assert (await service.get("/readyz"))[0] == 200


async def test_a_quiet_feed_fires_stale_feed_once_through_the_fan_out_and_a_tick_clears_it(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    extra = ops_webhook(http_receiver, '["*"]\nkinds = ["stale_feed"]')
    extra += "\n[engine]\nstale_seconds = 0.5\n"
    config = http_config(tmp_path, sources=mqtt_sources(mosquitto), extra=extra)
    async with http_service(config) as service:
        app = service.app
        await eventually(lambda: app.sources[0].state == "connected", what="MQTT connected")
        mosquitto.publish("ticks/IWM", tick_json(260.0, 1))
        await eventually(lambda: len(http_receiver.posts("/hook")) == 1, what="stale_feed webhook")
        alert = http_receiver.posts("/hook")[0].json()
        assert (alert["kind"], alert["symbol"], alert["price"]) == ("stale_feed", "IWM", 260.0)
        assert alert["headline"] == "IWM feed stale: no tick for 0.5 s (last 260.00)"
        # Once per quiet spell, not once per check.
        await service.get("/healthz")
        assert app.stale is not None
        assert app.stale.stale == {"IWM"}
        assert len(http_receiver.posts("/hook")) == 1

        mosquitto.publish("ticks/IWM", tick_json(261.0, 2))
        await eventually(lambda: "IWM" not in app.stale.stale, what="cleared")
        await eventually(lambda: len(http_receiver.posts("/hook")) == 2, what="stale again")
        _status, body, _ = await service.get("/api/v1/alerts?symbol=IWM")
        assert [a["kind"] for a in body["alerts"]] == ["stale_feed", "stale_feed"]
