"""The ``[[sources]]`` of alerts.toml: where ticks come from.

Four kinds, each a frozen dataclass whose defaults are the only place a
default is written: ``replay`` (a CSV or Parquet file), ``mqtt`` (a broker),
``websocket`` (a JSON feed) and ``simulator`` (random walks). :func:`read_sources`
reads the array of tables and records every problem by path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from service.config_table import (
    MQTT_CLIENT_ID,
    MQTT_CLIENT_ID_HINT,
    Table,
    field_default,
    mqtt_url,
    show_value,
)
from service.mqtt_common import Broker
from service.symbols import normalize_symbol

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_SIMULATOR_RATE = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySourceConfig:
    """Replay a CSV or Parquet tick file; ``speed`` 0 is as fast as possible, 1 real time."""

    name: str
    path: Path
    speed: float = 1.0
    kind: Literal["replay"] = "replay"

    def describe(self) -> str:
        return f"replay of {self.path} {describe_speed(self.speed)}"


def describe_speed(speed: float) -> str:
    return "as fast as possible" if speed == 0 else f"at {speed:g}x real time"


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSourceConfig:
    """Subscribe to ticks on an MQTT broker (JSON payloads, one tick each)."""

    name: str
    host: str
    port: int = 1883
    tls: bool = False
    topics: tuple[str, ...] = ("ticks/#",)
    qos: Literal[0, 1] = 1
    client_id: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    # With a persistent session the broker keeps the subscription, and the
    # QoS 1 ticks published while the service was away, until it returns.
    clean_session: bool = False
    # Silent this long, the client pings; unanswered as long again, the link is dead:
    # a black-holed link is given up within 2 x keepalive + 1 s.
    keepalive_seconds: int = 3
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    # Retries while another connection takes this client id over (client_id_conflict).
    conflict_backoff_seconds: float = 60.0
    max_payload_bytes: int = 64 * 1024
    # A tick stamped further ahead of the receive clock is rejected ("future_ts").
    max_future_seconds: float = 5.0
    kind: Literal["mqtt"] = "mqtt"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def broker(self) -> Broker:
        """Where this source connects, for the other clients of the same broker."""
        return Broker.of(self)

    def describe(self) -> str:
        session = "clean session" if self.clean_session else "persistent session"
        return (
            f"mqtt {self.url} topic {', '.join(self.topics)} qos {self.qos} "
            f"as {self.client_id} ({session})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldMap:
    """Where a websocket feed's messages keep the tick fields: dotted paths such as ``data.p``.

    ``items`` names a list of ticks inside each message (none: the message is
    one tick); ``match`` lists path = value pairs a message must have to be a
    tick at all (others, such as subscription replies, are ignored);
    ``symbol`` is the symbol of a single-instrument feed whose messages name none.
    """

    symbol: str = "symbol"
    price: str = "price"
    ts: str = "ts"
    volume: str | None = "volume"
    items: str | None = None
    match: tuple[tuple[str, str | int | float | bool], ...] = ()
    fixed_symbol: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebsocketSourceConfig:
    """Read ticks from a websocket feed of JSON messages."""

    name: str
    url: str
    subscribe: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    fields: FieldMap = field(default_factory=FieldMap)
    # A dead link is told within ping_interval + ping_timeout.
    ping_interval_seconds: float = 5.0
    ping_timeout_seconds: float = 5.0
    open_timeout_seconds: float = 10.0
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    max_message_bytes: int = 1024 * 1024
    max_future_seconds: float = 5.0
    kind: Literal["websocket"] = "websocket"

    def describe(self) -> str:
        return f"websocket feed {self.url}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorSourceConfig:
    """Random-walk ticks around given prices, for demos and load."""

    name: str
    prices: tuple[tuple[str, float], ...]
    rate: float = 1.0  # ticks per second, per symbol
    volatility: float = 0.0005  # standard deviation of one step, as a fraction of the price
    seed: int | None = None
    kind: Literal["simulator"] = "simulator"

    def describe(self) -> str:
        around = ", ".join(f"{symbol} {price:g}" for symbol, price in self.prices)
        return f"simulated random walk around {around} at {self.rate:g} ticks/s each"


SourceConfig = ReplaySourceConfig | MqttSourceConfig | WebsocketSourceConfig | SimulatorSourceConfig
SOURCE_KINDS = ("replay", "mqtt", "websocket", "simulator")


def read_sources(tables: list[Table], base_dir: Path) -> tuple[SourceConfig, ...]:
    """The ``[[sources]]`` tables; relative paths are taken from ``base_dir``."""
    sources: list[SourceConfig] = []
    names: dict[str, str] = {}
    for index, table in enumerate(tables):
        kind = table.choice("kind", SOURCE_KINDS)
        name = table.string(
            "name",
            default=f"{kind or 'source'}-{index}",
            pattern=_SOURCE_NAME,
            pattern_hint="letters, digits and . _ - (up to 64)",
        )
        if name in names:
            table.problem("name", f"duplicate source name {show_value(name)} (also {names[name]})")
        names.setdefault(name, table.path)
        source: SourceConfig | None = None
        if kind == "replay":
            source = _replay_source(table.reads(ReplaySourceConfig), name, base_dir)
        elif kind == "mqtt":
            source = _mqtt_source(table.reads(MqttSourceConfig), name, base_dir)
        elif kind == "websocket":
            source = _websocket_source(table.reads(WebsocketSourceConfig), name)
        elif kind == "simulator":
            source = _simulator_source(table.reads(SimulatorSourceConfig), name)
        else:
            table.finish(ignore_unknown=True)
        if source is not None and table.ok:
            sources.append(source)
    return tuple(sources)


def _replay_source(table: Table, name: str, base_dir: Path) -> ReplaySourceConfig:
    config = ReplaySourceConfig(
        name=name,
        path=table.existing_file("path", base_dir),
        speed=table.number("speed", minimum=0.0),
    )
    table.finish()
    return config


def _mqtt_source(table: Table, name: str, base_dir: Path) -> MqttSourceConfig:
    tls, host, port = table.convert("url", mqtt_url) or (False, "", 0)
    default_topics = list(field_default(MqttSourceConfig, "topics"))
    topics = tuple(table.convert("topic", _topic_filters, default=default_topics) or ())
    qos = table.integer("qos", minimum=0)
    if table.valid("qos") and qos > 1:
        table.problem("qos", f"expected 0 or 1, got {qos}")
    client_id = table.string(
        "client_id",
        default=f"strykr-alerts-{name}",
        pattern=MQTT_CLIENT_ID,
        pattern_hint=MQTT_CLIENT_ID_HINT,
    )
    username = table.string("username") if "username" in table else None
    password = table.string("password") if "password" in table else None
    if password is not None and username is None:
        table.problem("password", "is set without username; set both")
    ca_file = table.existing_file("ca_file", base_dir) if "ca_file" in table else None
    if ca_file is not None and not tls:
        table.problem("ca_file", "is only used with an mqtts:// url")
    config = MqttSourceConfig(
        name=name,
        host=host,
        port=port,
        tls=tls,
        topics=topics,
        qos=cast(Literal[0, 1], qos),
        client_id=client_id,
        username=username,
        password=password,
        ca_file=ca_file,
        clean_session=table.boolean("clean_session"),
        keepalive_seconds=table.integer("keepalive_seconds", minimum=1),
        reconnect_initial_seconds=table.number("reconnect_initial_seconds", exclusive_minimum=0.0),
        reconnect_max_seconds=table.number("reconnect_max_seconds", exclusive_minimum=0.0),
        conflict_backoff_seconds=table.number("conflict_backoff_seconds", exclusive_minimum=0.0),
        max_payload_bytes=table.integer("max_payload_bytes", minimum=64),
        max_future_seconds=table.number("max_future_seconds", minimum=0.0),
    )
    table.finish()
    return config


def _websocket_source(table: Table, name: str) -> WebsocketSourceConfig:
    url = table.convert("url", _ws_url)
    subscribe = table.convert("subscribe", _subscribe_message) if "subscribe" in table else None
    headers_table = table.table("headers")
    headers = tuple((key, headers_table.string(key)) for key in headers_table.free_keys())
    fields_table = table.table("fields").reads(FieldMap)
    match_table = table.table("match")
    match: list[tuple[str, str | int | float | bool]] = []
    for key in match_table.free_keys():
        value = match_table.convert(key, _match_value)
        if value is not None:
            match.append((key, value))
    fixed_symbol = table.convert("symbol", normalize_symbol) if "symbol" in table else None
    fields = FieldMap(
        symbol=fields_table.field_path("symbol"),
        price=fields_table.field_path("price"),
        ts=fields_table.field_path("ts"),
        volume=fields_table.field_path("volume"),
        items=table.field_path("items") if "items" in table else None,
        match=tuple(match),
        fixed_symbol=fixed_symbol,
    )
    fields_table.finish()
    config = WebsocketSourceConfig(
        name=name,
        url=url or "",
        subscribe=subscribe,
        headers=headers,
        fields=fields,
        ping_interval_seconds=table.number("ping_interval_seconds", exclusive_minimum=0.0),
        ping_timeout_seconds=table.number("ping_timeout_seconds", exclusive_minimum=0.0),
        open_timeout_seconds=table.number("open_timeout_seconds", exclusive_minimum=0.0),
        reconnect_initial_seconds=table.number("reconnect_initial_seconds", exclusive_minimum=0.0),
        reconnect_max_seconds=table.number("reconnect_max_seconds", exclusive_minimum=0.0),
        max_message_bytes=table.integer("max_message_bytes", minimum=64),
        max_future_seconds=table.number("max_future_seconds", minimum=0.0),
    )
    table.finish()
    return config


def _simulator_source(table: Table, name: str) -> SimulatorSourceConfig:
    prices_table = table.table("prices")
    prices: list[tuple[str, float]] = []
    for key in prices_table.free_keys():
        price = prices_table.number(key, exclusive_minimum=0.0)
        try:
            symbol = normalize_symbol(key)
        except ValueError as error:
            prices_table.problem(f'"{key}"', str(error))
            continue
        if prices_table.valid(key):
            prices.append((symbol, price))
    if not prices and prices_table.ok:
        table.problem("prices", "expected a table of symbol = price, such as { IWM = 260.0 }")
    seed = table.integer("seed") if "seed" in table else None
    config = SimulatorSourceConfig(
        name=name,
        prices=tuple(prices),
        rate=table.number("rate", exclusive_minimum=0.0),
        volatility=table.number("volatility", minimum=0.0),
        seed=seed,
    )
    if table.valid("volatility") and config.volatility >= 0.1:
        table.problem(
            "volatility", f"expected a fraction below 0.1, got {show_value(config.volatility)}"
        )
    if table.valid("rate") and config.rate * max(len(prices), 1) > MAX_SIMULATOR_RATE:
        table.problem(
            "rate",
            f"expected at most {MAX_SIMULATOR_RATE:,} ticks per second in all, "
            f"got {show_value(config.rate)} x {len(prices)} symbols",
        )
    table.finish()
    return config


def _topic_filters(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError('expected a topic filter such as "ticks/#", or an array of them')
    topics: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f'expected a topic filter such as "ticks/#", got {show_value(item)}')
        levels = item.split("/")
        bad_wildcard = any(
            ("#" in level and (level != "#" or index != len(levels) - 1))
            or ("+" in level and level != "+")
            for index, level in enumerate(levels)
        )
        if bad_wildcard or "\0" in item:
            raise ValueError(
                f"{show_value(item)} is not a valid topic filter: + must be a whole level "
                "and # the whole last level"
            )
        if item in topics:
            raise ValueError(f"duplicate topic filter {show_value(item)}")
        topics.append(item)
    return topics


def _ws_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a ws:// or wss:// URL, got {show_value(value)}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"expected a ws:// or wss:// URL, got {show_value(value)}")
    return value.strip()


def _subscribe_message(value: object) -> str:
    """A subscribe message: a string sent as is, or a table sent as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    raise ValueError(f"expected a string or a table, got {show_value(value)}")


def _match_value(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError(
        f"expected a string, number or boolean to compare with, got {show_value(value)}"
    )
