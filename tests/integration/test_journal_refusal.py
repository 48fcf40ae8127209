"""A journal that refuses writes mid-stream: acknowledgements stop, and nothing is lost.

The service reads QoS 1 ticks from a real Mosquitto into a journal on disk.
Mid-stream the journal's connection is made read-only (SQLite's
``query_only``: every write fails as on a read-only file). From then on no
message may be acknowledged to the broker (no commit covers its tick); the
engine stops taking ticks instead of piling alerts up; and once the journal
takes writes again, or the service is started again on a writable journal,
the alerts are exactly those of one uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as paho
import pytest
import structlog

from service.app import build
from service.config import Config, ServiceConfig
from service.journal.sqlite import SqliteJournal
from service.models import AlertEvent
from service.rules.settings import EngineConfig
from service.running import Service
from service.streams.settings import MqttSourceConfig
from tests.feeds import RULES, alerts_of_uninterrupted_run, payload, walk
from tests.helpers import eventually, mqtt_source, running
from tests.mosquitto import Mosquitto

TICKS = walk(600, seed=2)
BEFORE = 200  # committed and acknowledged before the journal refuses writes


@pytest.fixture
def acknowledged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every QoS 1 acknowledgement the service's MQTT client sends, by message id."""
    sent: list[int] = []
    ack = paho.Client.ack

    def spy(self: paho.Client, mid: int, qos: int) -> paho.MQTTErrorCode:
        sent.append(mid)
        return ack(self, mid, qos)

    monkeypatch.setattr(paho.Client, "ack", spy)
    return sent


def make_app(tmp_path: Path, broker: Mosquitto) -> tuple[Service, list[AlertEvent]]:
    alerts: list[AlertEvent] = []
    source = MqttSourceConfig(
        name="broker",
        host=broker.host,
        port=broker.port,
        qos=1,
        client_id="strykr-refusal-test",
        reconnect_initial_seconds=0.05,
        reconnect_max_seconds=0.5,
    )
    config = Config(
        service=ServiceConfig(stats_seconds=0, journal=tmp_path / "alerts.db"),
        engine=EngineConfig(queue_size=1_000),
        sources=(source,),
        rules=RULES,
    )
    return build(config, sinks=[alerts.append]), alerts


def journaled(app: Service) -> list[str]:
    return [str(alert["id"]) for alert in app.journal.alerts_after(None, None)]


def refuse_writes(app: Service, refuse: bool) -> None:
    assert isinstance(app.journal, SqliteJournal)
    app.journal.refuse_writes(refuse)


async def publish(broker: Mosquitto, start: int, stop: int) -> None:
    lines = [payload(tick) for tick in TICKS[start:stop]]
    broker.publish_lines("ticks/IWM", lines)


async def refused_mid_stream(app: Service, broker: Mosquitto, acknowledged: list[int]) -> int:
    """Run the first ticks through, refuse writes, publish the rest; return the acks before."""
    source = mqtt_source(app)
    await eventually(lambda: source.connected, what="connected")
    await publish(broker, 0, BEFORE)
    await eventually(lambda: app.processor.ticks == BEFORE, what="the first ticks evaluated")
    await eventually(lambda: source.unacknowledged == 0, what="the first ticks acknowledged")
    acked = len(acknowledged)
    assert acked == BEFORE
    refuse_writes(app, True)
    await publish(broker, BEFORE, len(TICKS))
    # The engine evaluates what it took, the commit covering it fails, and it takes no more.
    await eventually(lambda: app.recorder.failing, what="a commit refused")
    await eventually(lambda: app.processor.ticks > BEFORE, what="ticks evaluated, not committed")
    assert source.unacknowledged > 0
    assert len(acknowledged) == acked, "a tick no commit covers was acknowledged"
    return acked


async def test_refused_writes_stop_acknowledgements_until_the_journal_takes_them_again(
    tmp_path: Path, mosquitto: Mosquitto, acknowledged: list[int]
) -> None:
    expected = alerts_of_uninterrupted_run(TICKS)
    app, _ = make_app(tmp_path, mosquitto)
    with structlog.testing.capture_logs() as logs:
        async with running(app):
            acked = await refused_mid_stream(app, mosquitto, acknowledged)
            held = app.processor.ticks
            refuse_writes(app, False)
            await eventually(lambda: not app.recorder.failing, what="the commit retried")
            assert len(acknowledged) > acked
            await eventually(lambda: app.processor.ticks == len(TICKS), what="every tick")
            await eventually(lambda: journaled(app) == expected, what="every alert journaled")
            await eventually(
                lambda: mqtt_source(app).unacknowledged == 0, what="every tick acknowledged"
            )
    assert held < len(TICKS), "the engine stopped taking ticks while the journal refused"
    assert len(acknowledged) == len(TICKS)
    events = [e["event"] for e in logs if e["event"].startswith("journal_")]
    assert events == ["journal_write_failed", "journal_recovered"]
    assert app.rejections.total == 0


async def test_stopped_while_the_journal_refuses_writes_a_restart_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, acknowledged: list[int]
) -> None:
    expected = alerts_of_uninterrupted_run(TICKS)
    first, _ = make_app(tmp_path, mosquitto)
    async with running(first):
        await refused_mid_stream(first, mosquitto, acknowledged)
    # The broker kept every tick no commit covered; the journal is writable again.
    second, _ = make_app(tmp_path, mosquitto)
    async with running(second):
        await eventually(lambda: journaled(second) == expected, what="every alert journaled")
        # The last alert comes before the last tick: wait for the stream's end too.
        await eventually(
            lambda: second.processor.ticks >= len(TICKS) - BEFORE, what="every tick evaluated"
        )
        await eventually(
            lambda: mqtt_source(second).unacknowledged == 0, what="every tick acknowledged"
        )
    # Only what no commit covered came again: the first ticks' were acknowledged.
    assert second.processor.ticks == len(TICKS) - BEFORE
    assert second.rejections.total == 0
