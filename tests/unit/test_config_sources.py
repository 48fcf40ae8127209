"""[[sources]] of every kind: typed values, defaults, and each bad value named by its path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service.config import parse_config
from service.errors import ConfigError
from service.streams.settings import (
    FieldMap,
    MqttSourceConfig,
    SimulatorSourceConfig,
    WebsocketSourceConfig,
)


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, **kwargs)  # type: ignore[arg-type]
    return list(caught.value.problems)


def test_mqtt_source_minimal_gets_a_fixed_client_id_and_a_persistent_session() -> None:
    config = parse_config('[[sources]]\nkind = "mqtt"\nname = "broker"\nurl = "mqtt://10.0.0.5"')
    [source] = config.sources
    assert source == MqttSourceConfig(
        name="broker",
        host="10.0.0.5",
        port=1883,
        topics=("ticks/#",),
        qos=1,
        client_id="strykr-alerts-broker",
        clean_session=False,
    )
    assert source.describe() == (
        "mqtt mqtt://10.0.0.5:1883 topic ticks/# qos 1 as strykr-alerts-broker (persistent session)"
    )


def test_mqtt_source_full_reads_tls_credentials_and_topics(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    text = f"""
[[sources]]
kind = "mqtt"
url = "mqtts://broker.example.com"
topic = ["ticks/#", "fx/+/last"]
qos = 0
client_id = "desk-1"
username = "strykr"
password = "env:MQTT_PASSWORD"
ca_file = "{ca.name}"
clean_session = true
keepalive_seconds = 15
reconnect_initial_seconds = 0.25
reconnect_max_seconds = 10
max_payload_bytes = 4096
"""
    [source] = parse_config(text, base_dir=tmp_path, env={"MQTT_PASSWORD": "s3cret"}).sources
    assert isinstance(source, MqttSourceConfig)
    assert (source.tls, source.host, source.port) == (True, "broker.example.com", 8883)
    assert source.topics == ("ticks/#", "fx/+/last")
    assert (source.qos, source.client_id, source.username) == (0, "desk-1", "strykr")
    assert source.password == "s3cret"
    assert "s3cret" not in repr(source)
    assert source.ca_file == ca
    assert source.clean_session is True
    assert (source.keepalive_seconds, source.max_payload_bytes) == (15, 4096)
    assert (source.reconnect_initial_seconds, source.reconnect_max_seconds) == (0.25, 10.0)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('url = "http://broker:1883"', "url: expected an mqtt:// or mqtts:// URL such as"),
        ('url = "mqtt://user:pw@broker"', "url: credentials do not belong in the url"),
        ('url = "mqtt://broker:99999"', "url: expected a port from 1 to 65535"),
        ('url = "mqtt://broker/ticks"', "url: expected no path or query after host:port"),
        ('url = "mqtt://b"\ntopic = "ticks/#/more"', 'topic: "ticks/#/more" is not a valid'),
        ('url = "mqtt://b"\ntopic = "ti+cks"', 'topic: "ti+cks" is not a valid topic filter'),
        ('url = "mqtt://b"\ntopic = []', "topic: expected a topic filter such as"),
        ('url = "mqtt://b"\ntopic = ["a/#", "a/#"]', 'topic: duplicate topic filter "a/#"'),
        ('url = "mqtt://b"\nqos = 2', "qos: expected 0 or 1, got 2"),
        ('url = "mqtt://b"\npassword = "x"', "password: is set without username; set both"),
        ('url = "mqtt://b"\nclient_id = "has space"', "client_id: expected 1 to 64 letters"),
        ('url = "mqtt://b"\nca_file = "/etc/hostname"', "ca_file: is only used with an mqtts://"),
        ('url = "mqtt://b"\nkeepalive_seconds = 0', "keepalive_seconds: expected an integer >= 1"),
        ('url = "mqtt://b"\ntopics = "x"', 'topics: unknown key; did you mean "topic"?'),
        ("", "url: missing; this key is required"),
    ],
)
def test_mqtt_source_when_bad_names_the_key(lines: str, expected: str) -> None:
    found = problems(f'[[sources]]\nkind = "mqtt"\n{lines}')
    assert len(found) == 1, found
    assert found[0].startswith(f"sources[0].{expected}"), found


def test_websocket_source_maps_fields_match_and_headers() -> None:
    text = """
[[sources]]
kind = "websocket"
name = "vendor"
url = "wss://stream.example.com/ws"
subscribe = { method = "SUBSCRIBE", params = ["btcusdt@trade"], id = 1 }
headers = { Authorization = "env:FEED_AUTH" }
items = "data"
symbol = "btc"
match = { e = "trade", live = true }
ping_interval_seconds = 5
ping_timeout_seconds = 3
max_message_bytes = 65536

[sources.fields]
symbol = "s"
price = "p"
ts = "T"
volume = "q"
"""
    [source] = parse_config(text, env={"FEED_AUTH": "Bearer abc"}).sources
    assert isinstance(source, WebsocketSourceConfig)
    assert source.url == "wss://stream.example.com/ws"
    assert json.loads(source.subscribe or "") == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@trade"],
        "id": 1,
    }
    assert source.headers == (("Authorization", "Bearer abc"),)
    assert "abc" not in repr(source)
    assert source.fields == FieldMap(
        symbol="s",
        price="p",
        ts="T",
        volume="q",
        items="data",
        match=(("e", "trade"), ("live", True)),
        fixed_symbol="BTC",
    )
    assert (source.ping_interval_seconds, source.ping_timeout_seconds) == (5.0, 3.0)
    assert source.max_message_bytes == 65536


def test_websocket_source_defaults_read_our_own_tick_format() -> None:
    [source] = parse_config('[[sources]]\nkind = "websocket"\nurl = "ws://127.0.0.1:9000"').sources
    assert isinstance(source, WebsocketSourceConfig)
    assert source.fields == FieldMap()
    assert source.subscribe is None
    # A dead feed is told within ten seconds; the file's defaults are the dataclass's.
    assert (source.ping_interval_seconds, source.ping_timeout_seconds) == (5.0, 5.0)
    assert source == WebsocketSourceConfig(name=source.name, url=source.url)


def test_mqtt_source_defaults_detect_a_dead_link_within_seconds() -> None:
    [source] = parse_config('[[sources]]\nkind = "mqtt"\nurl = "mqtt://b"').sources
    assert isinstance(source, MqttSourceConfig)
    assert source.keepalive_seconds == 3
    assert (source.conflict_backoff_seconds, source.max_future_seconds) == (60.0, 5.0)
    assert source == MqttSourceConfig(
        name=source.name, host="b", port=1883, client_id=source.client_id
    )


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('url = "https://x"', "url: expected a ws:// or wss:// URL"),
        ('url = "ws://x"\nsubscribe = 5', "subscribe: expected a string or a table, got 5"),
        ('url = "ws://x"\nfields = { price = "a..b" }', "fields.price: expected a dotted path"),
        ('url = "ws://x"\nfields = { prize = "p" }', "fields.prize: unknown key; did you mean"),
        ('url = "ws://x"\nmatch = { e = [1] }', "match.e: expected a string, number or boolean"),
        ('url = "ws://x"\nsymbol = "a b"', "symbol: "),
        ('url = "ws://x"\nping_timeout_seconds = 0', "ping_timeout_seconds: expected a number > 0"),
    ],
)
def test_websocket_source_when_bad_names_the_key(lines: str, expected: str) -> None:
    found = problems(f'[[sources]]\nkind = "websocket"\n{lines}')
    assert len(found) == 1, found
    assert found[0].startswith(f"sources[0].{expected}"), found


def test_simulator_source_reads_prices_rate_and_seed() -> None:
    text = """
[[sources]]
kind = "simulator"
name = "demo"
prices = { IWM = 260.0, spx = 4850 }
rate = 5
volatility = 0.001
seed = 42
"""
    [source] = parse_config(text).sources
    assert source == SimulatorSourceConfig(
        name="demo", prices=(("IWM", 260.0), ("SPX", 4850.0)), rate=5.0, volatility=0.001, seed=42
    )
    assert source.describe() == ("simulated random walk around IWM 260, SPX 4850 at 5 ticks/s each")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("", "prices: expected a table of symbol = price"),
        ("prices = {}", "prices: expected a table of symbol = price"),
        ("prices = { IWM = -1 }", "prices.IWM: expected a number > 0, got -1"),
        ('prices = { "I W M" = 1 }', 'prices."I W M": '),
        ("prices = { IWM = 1 }\nrate = 0", "rate: expected a number > 0, got 0"),
        ("prices = { IWM = 1 }\nrate = 2000000", "rate: expected at most 1,000,000 ticks"),
        ("prices = { IWM = 1 }\nvolatility = 0.5", "volatility: expected a fraction below 0.1"),
        ("prices = { IWM = 1 }\nseed = 1.5", "seed: expected an integer, got 1.5"),
    ],
)
def test_simulator_source_when_bad_names_the_key(lines: str, expected: str) -> None:
    found = problems(f'[[sources]]\nkind = "simulator"\n{lines}')
    assert len(found) == 1, found
    assert found[0].startswith(f"sources[0].{expected}"), found


def test_source_names_must_differ_across_kinds() -> None:
    text = """
[[sources]]
kind = "simulator"
name = "feed"
prices = { IWM = 260 }

[[sources]]
kind = "websocket"
name = "feed"
url = "ws://127.0.0.1:9000"
"""
    assert problems(text) == ['sources[1].name: duplicate source name "feed" (also sources[0])']


def test_source_examples_commented_in_the_shipped_alerts_toml_are_valid(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "alerts.toml").read_text()
    examples = re.findall(r"^# \[\[sources\]\]\n(?:# (?:[a-z_]+ = |# ).*\n)+", text, re.MULTILINE)
    assert len(examples) == 4
    (tmp_path / "ticks").mkdir()
    (tmp_path / "ticks" / "2026-02-02.parquet").write_bytes(b"")
    uncommented = "\n".join(
        line.removeprefix("# ")
        for example in examples
        for line in example.splitlines()
        if not line.startswith("# # ")
    )
    config = parse_config(uncommented, base_dir=tmp_path)
    assert [source.kind for source in config.sources] == [
        "replay",
        "mqtt",
        "websocket",
        "simulator",
    ]
