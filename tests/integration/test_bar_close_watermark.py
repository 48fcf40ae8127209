"""A quiet symbol's bar-close alert comes on time: the watermark, not its next tick, closes the bar.

A real service reads ticks from a real Mosquitto. IWM ticks in one 2-second
bar (closing at 256: armed), then once in the next (254) and goes quiet. No
tick of IWM or any other symbol comes after, yet the bar-close alert must
arrive once the feed's clock, carried on by the wall clock, passes the bar's
end by the lateness allowance, and not much later. Replaying the same ticks
must give the same alert.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as paho

from service.app import build
from service.config import Config, ServiceConfig, parse_config
from service.models import AlertEvent, Tick
from service.processing.batch import Stages
from service.processing.engine_task import TickProcessor
from service.processing.stages import each_alert
from service.rules.settings import EngineConfig
from service.streams.rejections import Rejections
from service.streams.settings import MqttSourceConfig
from tests.feeds import payload
from tests.helpers import eventually, mqtt_source, running
from tests.mosquitto import Mosquitto

BAR_NS = 2_000_000_000
LATENESS_MS = 400.0
RULES = parse_config(
    """
[[rules]]
id = "iwm-2s-close-below-255"
symbol = "IWM"
condition = "cross_below"
level = 255.0
frequency = "once_per_bar_close"
bar = "2s"
"""
).rules


async def at_least(wall_ns: int) -> None:
    """Wait (bounded: at most one bar) until the wall clock reaches ``wall_ns``."""
    await asyncio.sleep(min(max(wall_ns - time.time_ns(), 0) / 1e9, 2 * BAR_NS / 1e9))


async def test_a_quiet_symbols_bar_close_alert_arrives_within_the_lateness_of_its_end(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    arrived: list[tuple[AlertEvent, int]] = []
    source = MqttSourceConfig(
        name="broker", host=mosquitto.host, port=mosquitto.port, qos=1, client_id="strykr-wm"
    )
    config = Config(
        service=ServiceConfig(stats_seconds=0, journal=tmp_path / "alerts.db"),
        engine=EngineConfig(lateness_ms=LATENESS_MS),
        sources=(source,),
        rules=RULES,
    )
    app = build(config, sinks=[lambda alert: arrived.append((alert, time.time_ns()))])
    sent: list[Tick] = []
    # An open connection: a tick is on its way the moment it is made.
    feed = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="strykr-wm-feed")
    feed.connect(mosquitto.host, mosquitto.port)
    feed.loop_start()
    try:
        async with running(app):
            await eventually(lambda: mqtt_source(app).connected, what="connected")
            # Start at a bar's beginning, so each tick is well inside its bar.
            start = (time.time_ns() // BAR_NS + 1) * BAR_NS
            for price, offset_ns in ((256.0, 300_000_000), (254.0, BAR_NS + 300_000_000)):
                await at_least(start + offset_ns)
                sent.append(Tick(symbol="IWM", price=price, ts_ns=time.time_ns(), volume=100.0))
                feed.publish("ticks/IWM", payload(sent[-1]), qos=1)
            end_ns = start + 2 * BAR_NS  # the end of the 254 bar: nothing ticks after
            await eventually(lambda: bool(arrived), what="the bar-close alert", within=10.0)
    finally:
        feed.loop_stop()
        feed.disconnect()
    ((alert, arrival_ns),) = arrived
    assert (alert.price, alert.ts_ns, alert.trigger) == (254.0, end_ns, "bar_close")
    late_s = (arrival_ns - end_ns) / 1e9
    # The allowance first; then at most the 50 ms carry interval, the feed's delay
    # (milliseconds here) and the commit.
    assert LATENESS_MS / 1000 - 0.01 <= late_s <= LATENESS_MS / 1000 + 0.15, late_s

    # The same ticks replayed: the same alert, when the file ends.
    replayed: list[AlertEvent] = []
    processor = TickProcessor.for_settings(
        EngineConfig(lateness_ms=LATENESS_MS),
        RULES,
        Rejections(),
        stages=Stages([("collect", each_alert(replayed.append))]),
    )
    assert processor.process(sent) == []
    processor.finish()
    assert [a.id for a in replayed] == [alert.id]
