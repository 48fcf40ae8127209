"""``strykr-alerts feed``: a tick file published to a broker, as the MQTT source reads ticks."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from service.errors import TickError
from service.streams.replay import read_tick_file
from service.timestamps import parse_timestamp
from tests.conftest import run_cli
from tests.mosquitto import Mosquitto
from tests.waiting import wait_until

DATA = Path(__file__).resolve().parent.parent / "data"


def test_feed_publishes_each_good_row_of_a_file_on_its_symbols_topic(mosquitto: Mosquitto) -> None:
    path = DATA / "iwm_day.csv"
    rows = [
        tick for _row, tick in read_tick_file(path).iter_ticks() if not isinstance(tick, TickError)
    ]
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    listener = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="feed-listener")

    def on_subscribe(*_args: Any) -> None:
        subscribed.set()

    def on_message(_client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        received.append((message.topic, message.payload))

    listener.on_subscribe = on_subscribe
    listener.on_message = on_message
    listener.connect(mosquitto.host, mosquitto.port)
    listener.loop_start()
    try:
        listener.subscribe("desk/#", qos=1)
        assert subscribed.wait(10)
        done = run_cli(
            "feed", "--to", mosquitto.url, "--ticks", str(path), "--speed", "0", "--prefix", "desk"
        )
        assert done.returncode == 0, done.stderr
        assert f"published {len(rows)} ticks to {mosquitto.url}" in done.stderr
        wait_until(lambda: len(received) == len(rows), within=10, what="every tick")
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert [topic for topic, _ in received] == [f"desk/{tick.symbol}" for tick in rows]
    messages = [json.loads(body) for _, body in received]
    assert [(m["symbol"], m["price"], parse_timestamp(m["ts"])) for m in messages] == [
        (tick.symbol, tick.price, tick.ts_ns) for tick in rows
    ]


def test_feed_to_a_bad_address_or_prefix_says_what_is_wrong() -> None:
    done = run_cli("feed", "--to", "http://127.0.0.1:1883")
    assert done.returncode == 2
    assert "strykr-alerts: http://127.0.0.1:1883:" in done.stderr
    done = run_cli("feed", "--to", "mqtt://127.0.0.1:1", "--prefix", "ticks/#")
    assert done.returncode == 2
    assert "a topic prefix has no wildcard" in done.stderr
