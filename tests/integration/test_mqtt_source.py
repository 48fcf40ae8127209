"""The MQTT source against a real Mosquitto started by the test on a free port."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiomqtt
import pytest
import structlog

from service.app import build
from service.config import Config, ServiceConfig
from service.models import AlertEvent, Rule, Tick
from service.rules.settings import EngineConfig
from service.running import Service
from service.streams.aiomqtt_flow import BACKLOG_HIGH
from service.streams.mqtt import MqttSource
from service.streams.queue import TickBatch, TickQueue
from service.streams.rejections import Rejections
from service.streams.settings import MqttSourceConfig
from tests.builders import level_rule, tick
from tests.conftest import StartService
from tests.feeds import RULES, alerts_of_uninterrupted_run, payload, walk
from tests.helpers import eventually, mqtt_source, running, service_config, take
from tests.mosquitto import Mosquitto, free_port


def source_config(broker: Mosquitto, **settings: object) -> MqttSourceConfig:
    options: dict[str, object] = {
        "name": "broker",
        "host": broker.host,
        "port": broker.port,
        "client_id": f"strykr-test-{broker.port}",
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
        **settings,
    }
    return MqttSourceConfig(**options)  # type: ignore[arg-type]


def make_app(
    source: MqttSourceConfig, *, rules: tuple[Rule, ...] = RULES
) -> tuple[Service, list[AlertEvent]]:
    alerts: list[AlertEvent] = []
    config = Config(
        service=ServiceConfig(stats_seconds=0),
        engine=EngineConfig(queue_size=1_000),
        sources=(source,),
        rules=rules,
    )
    return build(config, sinks=[alerts.append]), alerts


def test_mosquitto_pub_ticks_alert_in_the_running_service(
    mosquitto: Mosquitto, start_service: StartService, tmp_path: Path
) -> None:
    config = service_config(
        tmp_path,
        f"""
[[sources]]
kind = "mqtt"
name = "broker"
url = "{mosquitto.url}"
topic = ["ticks/#", "more/+"]
qos = 1

[[rules]]
id = "iwm-below-255"
symbol = "IWM"
level = 255.0
direction = "below"
confirm_ticks = 2
""",
    )
    service = start_service("run", "--config", str(config))
    service.wait_for("mqtt_connected")
    # No symbol in the payloads: the topic's last level names it. Times in three forms.
    mosquitto.publish(
        "ticks/IWM",
        '{"price": 256.10, "ts": "2026-02-02T14:30:00.000Z"}',
        '{"price": 254.90, "ts": 1770042601}',
        '{"price": 254.60, "ts": 1770042602500, "volume": 100}',
    )
    mosquitto.publish("more/SPX", '{"price": 4850, "ts": 1770042603}')
    [alert] = service.wait_for("alert_fired")
    assert alert["headline"] == "IWM broke below 255.00 at 254.60"
    assert alert["at"] == "2026-02-02T14:30:02.500Z"
    started = time.monotonic()
    assert service.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    [stopped] = [e for e in service.events if e["event"] == "service_stopped"]
    assert stopped["ticks"] == 4
    assert stopped["sources"] == {
        "broker": {
            "ticks": 4,
            "received": 4,
            "state": "connected",
            "connections": 1,
            "duplicates": 0,
            "paused": 0,
        }
    }


async def publish_steadily(broker: Mosquitto, ticks: list[Tick], per_second: float) -> None:
    """Publish ``ticks`` with QoS 1 as a feed handler would: retry until the broker is back."""
    client = aiomqtt.Client(
        broker.host, broker.port, identifier="test-feed", clean_session=False, timeout=2
    )
    sent = 0
    while sent < len(ticks):
        try:
            async with client:
                while sent < len(ticks):
                    await client.publish("ticks/IWM", payload(ticks[sent]), qos=1)
                    sent += 1
                    await asyncio.sleep(1 / per_second)
        except aiomqtt.MqttError:
            # The broker may have taken the tick before it went: then it comes twice.
            await asyncio.sleep(0.1)


async def test_broker_down_for_5_s_loses_nothing_and_alerts_as_uninterrupted(
    mosquitto: Mosquitto,
) -> None:
    ticks = walk(600, seed=2)
    expected = alerts_of_uninterrupted_run(ticks)
    assert len(expected) >= 4, "the walk must break the levels several times"
    app, alerts = make_app(source_config(mosquitto))
    source = mqtt_source(app)
    with structlog.testing.capture_logs() as logs:
        async with running(app):
            await eventually(lambda: source.connected, what="connected")
            publisher = asyncio.create_task(publish_steadily(mosquitto, ticks, per_second=100))
            await eventually(lambda: source.accepted >= 200, what="200 ticks before the outage")
            await asyncio.to_thread(mosquitto.stop)
            await eventually(lambda: not source.connected, what="the source sees the outage")
            await asyncio.sleep(5)
            await asyncio.to_thread(mosquitto.start)
            await asyncio.wait_for(publisher, 30)
            await eventually(lambda: app.processor.ticks == len(ticks), within=20, what="all")
    assert [alert.id for alert in alerts] == expected
    assert app.rejections.total == 0
    assert source.connections == 2
    changes = [e["event"] for e in logs if e["log_level"] != "debug" and "mqtt" in e["event"]]
    assert changes == ["mqtt_connected", "mqtt_disconnected", "mqtt_connected"]


async def test_ticks_published_while_the_service_is_away_arrive_when_it_returns(
    mosquitto: Mosquitto,
) -> None:
    ticks = walk(300, seed=2)
    config = source_config(mosquitto)
    first, first_alerts = make_app(config)
    async with running(first):
        await eventually(lambda: mqtt_source(first).connected)
        mosquitto.publish_lines("ticks/IWM", [payload(t) for t in ticks[:100]])
        await eventually(lambda: first.processor.ticks == 100)
    mosquitto.publish_lines("ticks/IWM", [payload(t) for t in ticks[100:]])  # nobody listening
    second, second_alerts = make_app(config)  # same client id: the broker kept the session
    async with running(second):
        await eventually(lambda: second.processor.ticks == 200, what="the 200 ticks kept")
    assert second.processor.ticks == 200
    # The second run starts without the first one's engine state, so compare from where it began.
    assert [a.id for a in second_alerts] == alerts_of_uninterrupted_run(ticks[100:])
    assert len(first_alerts) + len(second_alerts) > 0


async def test_malformed_payloads_are_counted_and_skipped_between_good_ticks(
    mosquitto: Mosquitto,
) -> None:
    rules = (level_rule(255.0, rule_id="below", confirm_ticks=3),)
    app, alerts = make_app(source_config(mosquitto), rules=rules)
    megabyte = json.dumps({"symbol": "IWM", "price": 254, "ts": 1770042610, "pad": "x" * 1_000_000})
    messages = [
        payload(tick(256.0, 0)),
        payload(tick(254.5, 1)),
        "not json at all",
        '{"symbol": "IWM", "ts": 1770042602}',
        payload(tick(254.0, 3)),
        '{"symbol": "IWM", "price": "NaN", "ts": 1770042604}',
        '{"symbol": "IWM", "price": -5, "ts": 1770042605}',
        megabyte,
        b"\xff\xfe\x00binary",
        payload(tick(253.9, 9)),
    ]
    async with running(app):
        await eventually(lambda: mqtt_source(app).connected)
        mosquitto.publish("ticks/IWM", *messages)
        await eventually(lambda: mqtt_source(app).received == len(messages))
        await eventually(lambda: app.processor.ticks == 4)
    assert [(a.rule, a.price) for a in alerts] == [("below", 253.9)]
    assert dict(app.rejections.counts) == {
        "not_json": 2,
        "missing_price": 1,
        "price_not_finite": 1,
        "price_not_positive": 1,
        "payload_too_large": 1,
    }


@pytest.mark.parametrize("qos", [0, 1])
async def test_a_full_queue_pushes_back_on_the_broker_and_nothing_is_lost(
    mosquitto: Mosquitto, qos: int
) -> None:
    # Nobody takes from the queue at first: the engine has fallen behind. (The queue is
    # smaller than the broker's window of 20 unacknowledged QoS 1 messages.)
    queue = TickQueue(10)
    rejections = Rejections()
    source = MqttSource(source_config(mosquitto, qos=qos), rejections)
    ticks = [tick(250 + i % 20, i) for i in range(3 * BACKLOG_HIGH)]
    reader = asyncio.create_task(source.run(queue))
    try:
        await eventually(lambda: source.connected)
        lines = [payload(t) for t in ticks]
        await asyncio.to_thread(mosquitto.publish_lines, "ticks/IWM", lines, qos=qos)
        # The reader waits on the full queue (so it takes nothing more) and the client
        # stops reading at its high mark (QoS 1: the broker's window may stop it
        # sooner); the broker holds the rest.
        await eventually(lambda: queue.full_waits == 1, what="the reader waiting on the queue")
        if qos == 0:
            await eventually(lambda: source.paused == 1, what="the socket no longer read")
        assert source.received == 11
        assert queue.full_waits == 1
        if qos == 0:
            assert (source.backlog, source.paused) == (BACKLOG_HIGH, 1)
        else:
            assert source.backlog <= BACKLOG_HIGH
        async with asyncio.timeout(30):
            taken = await take(queue, len(ticks), settle=source.settle)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert taken == ticks
    assert rejections.total == 0


async def test_unreachable_broker_is_logged_once_and_retried_until_it_comes(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path / "late", port=free_port())
    app, _ = make_app(source_config(broker))
    source = mqtt_source(app)
    try:
        with structlog.testing.capture_logs() as logs:
            async with running(app):
                await asyncio.sleep(1.5)  # several retries, capped at 0.5 s
                await asyncio.to_thread(broker.start)
                await eventually(lambda: source.connected, what="connected once the broker is up")
    finally:
        broker.stop()
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["mqtt_unreachable"]
    assert sum(e["event"] == "mqtt_retry" for e in logs) >= 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_service_stops_within_5_s_while_the_broker_is_down(
    start_service: StartService, tmp_path: Path, sig: int
) -> None:
    config = service_config(
        tmp_path,
        f"""
[[sources]]
kind = "mqtt"
url = "mqtt://127.0.0.1:{free_port()}"
reconnect_max_seconds = 30

[[sources]]
kind = "simulator"
prices = {{ IWM = 260.0 }}
rate = 50
""",
    )
    service = start_service("run", "--config", str(config))
    service.wait_for("mqtt_unreachable")
    service.wait_for("simulator_started")
    started = time.monotonic()
    assert service.stop(sig) == 0
    assert time.monotonic() - started < 5
    assert [e["event"] for e in service.events][-2:] == ["service_stopping", "service_stopped"]


async def test_a_qos_1_message_is_acknowledged_only_once_a_commit_covers_it_in_order(
    mosquitto: Mosquitto,
) -> None:
    config = source_config(mosquitto, qos=1)
    ticks = [tick(250 + i, i) for i in range(10)]
    queue = TickQueue(100)
    source = MqttSource(config, Rejections())
    reader = asyncio.create_task(source.run(queue))
    try:
        await eventually(lambda: source.connected)
        await asyncio.to_thread(mosquitto.publish_lines, "ticks/IWM", [payload(t) for t in ticks])
        batch = await queue.get_batch(100)
        while len(batch.ticks) < len(ticks):
            more = await queue.get_batch(100)
            batch = TickBatch(
                [*batch.ticks, *more.ticks], [], 0.0, [*batch.receipts, *more.receipts]
            )
        receipts = [receipt for _, receipt in batch.receipts]
        assert (list(batch.ticks), source.unacknowledged) == (ticks, 10)
        source.settle([receipts[i] for i in (2, 0, 1, 5, 4, 3)])  # any order: acked in order
        assert source.unacknowledged == 4
        source.settle([receipts[8]])  # 6 and 7 come before it: it waits for them
        assert source.unacknowledged == 4
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    # Started again (a crash): the broker sends what was not acknowledged, and only that.
    again = TickQueue(100)
    restarted = MqttSource(config, Rejections())
    reader = asyncio.create_task(restarted.run(again))
    try:
        async with asyncio.timeout(10):
            assert await take(again, 4) == ticks[6:]
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert again.qsize() == 0
