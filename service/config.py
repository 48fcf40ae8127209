"""alerts.toml → typed, validated, frozen configuration.

:func:`load_config` reads the file with ``tomllib`` and checks every value. It
collects every problem it finds (not only the first) and raises one
:class:`~service.errors.ConfigError` whose lines name the value's path,
what was expected and what was found::

    rules[2].direction: expected "below" or "above", got "down"

Unknown keys are errors too, so a typo never silently falls back to a
default. A string ``"env:NAME"`` anywhere stands for the environment variable
``NAME``: secrets and per-machine paths stay out of the file.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from service.api.settings import HttpConfig, read_http
from service.articles.instruments import DEFAULT_ALIASES
from service.articles.parse import MAX_ARTICLE_BYTES
from service.config_table import Table, http_url, mqtt_url, show_value
from service.delivery.settings import (
    DeliveryConfig,
    EmailConfig,
    MqttOutConfig,
    PushConfig,
    WebhookConfig,
    WebsocketHubConfig,
    read_delivery,
    read_email,
    read_mqtt_out,
    read_push,
    read_subscribers,
    read_webhook,
    read_websocket_hub,
)
from service.delivery.subscribers import Subscriber
from service.errors import ConfigError
from service.models import Direction, LevelRule, RangeRule, Rule
from service.rules.engine import SameTime
from service.symbols import normalize_symbol

LogFormat = Literal["auto", "console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]

_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_SIMULATOR_RATE = 1_000_000
DEFAULT_JOURNAL = "var/alerts.db"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    log_level: LogLevel = "info"
    log_format: LogFormat = "auto"
    # How often the running service logs its counters (pipeline_stats); 0 never.
    stats_seconds: float = 60.0
    # The alert journal and delivery outbox (SQLite); None keeps it in memory.
    journal: Path | None = None
    # Where people reach the HTTP API: the base of links in mail (unsubscribe).
    public_url: str = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Engine settings: windows and bars per symbol, the tick queue bound, what ticks it takes."""

    windows: tuple[str, ...] = ()
    bars: tuple[str, ...] = ()
    queue_size: int = 10_000
    # A symbol with no tick for this long fires a stale_feed alert; 0: never.
    stale_seconds: float = 0.0
    # A tick at the same time as its symbol's last one, at another price: "reject" keeps
    # the first ("same_time"); "accept" takes both, in arrival order (coarse feed clocks).
    same_time: SameTime = "reject"
    # Prices further than this from the symbol's recent prices are rejected
    # ("price_implausible") until price_band_rebase_ticks in a row agree; 0: no band.
    price_band_percent: float = 20.0
    price_band_rebase_ticks: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySourceConfig:
    """Replay a CSV or Parquet tick file; ``speed`` 0 is as fast as possible, 1 real time."""

    name: str
    path: Path
    speed: float = 1.0
    kind: Literal["replay"] = "replay"

    def describe(self) -> str:
        pace = "as fast as possible" if self.speed == 0 else f"at {self.speed:g}x real time"
        return f"replay of {self.path} {pace}"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDefaults:
    """The settings of the level rules made from articles' levels."""

    confirm_ticks: int = 1
    confirm_seconds: float = 0.0
    hysteresis: float = 0.0
    cooldown_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticlesConfig:
    """Where articles come from, and whether their levels become rules."""

    dir: Path | None = None
    dir_poll_seconds: float = 1.0
    feed_url: str | None = None
    feed_poll_seconds: float = 60.0
    max_bytes: int = MAX_ARTICLE_BYTES
    auto_levels: bool = False
    rule_defaults: RuleDefaults = field(default_factory=RuleDefaults)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    path: Path | None = None
    service: ServiceConfig = field(default_factory=ServiceConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    sources: tuple[SourceConfig, ...] = ()
    rules: tuple[Rule, ...] = ()
    articles: ArticlesConfig = field(default_factory=ArticlesConfig)
    # Instrument names in articles → symbols: the defaults, then [aliases].
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    # None: no hub (a config file always has one, 127.0.0.1:8765 unless it says otherwise).
    websocket: WebsocketHubConfig | None = None
    email: EmailConfig | None = None
    push: PushConfig = field(default_factory=PushConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    mqtt_out: MqttOutConfig | None = None
    subscribers: tuple[Subscriber, ...] = ()
    # None: no HTTP face (a config file always has one, 127.0.0.1:8080 unless it says otherwise).
    http: HttpConfig | None = None

    @property
    def symbols(self) -> list[str]:
        """The symbols the rules watch, sorted."""
        return sorted({rule.symbol for rule in self.rules})


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the TOML file at ``path``.

    Relative paths inside it are taken relative to the file's directory.
    Raises :class:`~service.errors.ConfigError` listing every problem found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found; pass --config PATH"]) from None
    except IsADirectoryError:
        raise ConfigError(str(path), ["is a directory, not a TOML file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(path), [f"cannot be read: {error}"]) from None
    return parse_config(text, source=str(path), base_dir=path.parent, env=env, path=path)


def parse_config(
    text: str,
    *,
    source: str = "alerts.toml",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Validate TOML ``text``; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [f"invalid TOML: {error}"]) from None
    problems: list[str] = []
    root = Table(data, "", problems, os.environ if env is None else env)
    base = base_dir if base_dir is not None else Path.cwd()
    service = _service(root.table("service"), base)
    engine = _engine(root.table("engine"))
    sources = _sources(root.tables("sources"), base)
    rules = _rules(root.tables("rules"))
    articles = _articles(root.table("articles"), base)
    aliases = _aliases(root.table("aliases"))
    delivery = read_delivery(root.table("delivery"))
    websocket = _websocket(root.table("websocket"))
    email = read_email(root.table("email")) if "email" in root else None
    push = read_push(root.table("push"))
    webhook = read_webhook(root.table("webhook"))
    mqtt_out = read_mqtt_out(root.table("mqtt_out"), base) if "mqtt_out" in root else None
    subscribers = read_subscribers(root.tables("subscribers"), email=email is not None)
    http = read_http(root.table("http"))
    root.finish()
    if problems:
        raise ConfigError(source, problems)
    return Config(
        path=path,
        service=service,
        engine=engine,
        sources=sources,
        rules=rules,
        articles=articles,
        aliases=aliases,
        delivery=delivery,
        websocket=websocket,
        email=email,
        push=push,
        webhook=webhook,
        mqtt_out=mqtt_out,
        subscribers=subscribers,
        http=http,
    )


def _service(table: Table, base_dir: Path) -> ServiceConfig:
    level = table.choice("log_level", ("debug", "info", "warning", "error"), default="info")
    fmt = table.choice("log_format", ("auto", "console", "json"), default="auto")
    stats_seconds = table.number("stats_seconds", default=60.0, minimum=0.0)
    journal = table.string("journal", default=DEFAULT_JOURNAL)
    public_url = table.convert("public_url", http_url, default="http://127.0.0.1:8080")
    table.finish()
    return ServiceConfig(
        log_level=cast(LogLevel, level),
        log_format=cast(LogFormat, fmt),
        stats_seconds=stats_seconds,
        journal=None if journal in ("", ":memory:") else _relative(journal, base_dir),
        public_url=(public_url or "").rstrip("/"),
    )


def _relative(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _websocket(table: Table) -> WebsocketHubConfig | None:
    enabled = table.boolean("enabled", default=True)
    hub = read_websocket_hub(table)
    return hub if enabled else None


def _engine(table: Table) -> EngineConfig:
    windows = table.durations("windows")
    bars = table.durations("bars")
    queue_size = table.integer("queue_size", default=10_000, minimum=1)
    stale_seconds = table.number("stale_seconds", default=0.0, minimum=0.0)
    same_time = table.choice("same_time", ("reject", "accept"), default="reject")
    band = table.number("price_band_percent", default=20.0, minimum=0.0)
    if table.valid("price_band_percent") and band >= 100:
        table.problem(
            "price_band_percent",
            f"expected a percentage below 100 (0 turns the band off), got {show_value(band)}",
        )
    rebase_ticks = table.integer("price_band_rebase_ticks", default=3, minimum=2)
    table.finish()
    return EngineConfig(
        windows=windows,
        bars=bars,
        queue_size=queue_size,
        stale_seconds=stale_seconds,
        same_time=cast(SameTime, same_time),
        price_band_percent=band,
        price_band_rebase_ticks=rebase_ticks,
    )


def _sources(tables: list[Table], base_dir: Path) -> tuple[SourceConfig, ...]:
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
            path = table.existing_file("path", base_dir)
            speed = table.number("speed", default=1.0, minimum=0.0)
            table.finish()
            source = ReplaySourceConfig(name=name, path=path, speed=speed)
        elif kind == "mqtt":
            source = _mqtt_source(table, name, base_dir)
        elif kind == "websocket":
            source = _websocket_source(table, name)
        elif kind == "simulator":
            source = _simulator_source(table, name)
        else:
            table.finish(ignore_unknown=True)
        if source is not None and table.ok:
            sources.append(source)
    return tuple(sources)


def _mqtt_source(table: Table, name: str, base_dir: Path) -> MqttSourceConfig:
    tls, host, port = table.convert("url", mqtt_url) or (False, "", 0)
    topics = table.convert("topic", _topic_filters, default=["ticks/#"])
    qos = table.integer("qos", default=1, minimum=0)
    if table.valid("qos") and qos > 1:
        table.problem("qos", f"expected 0 or 1, got {qos}")
    client_id = table.string(
        "client_id",
        default=f"strykr-alerts-{name}",
        pattern=_CLIENT_ID,
        pattern_hint="1 to 64 letters, digits and . _ : -",
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
        topics=tuple(topics or ()),
        qos=cast(Literal[0, 1], qos),
        client_id=client_id,
        username=username,
        password=password,
        ca_file=ca_file,
        clean_session=table.boolean("clean_session", default=False),
        keepalive_seconds=table.integer("keepalive_seconds", default=3, minimum=1),
        reconnect_initial_seconds=table.number(
            "reconnect_initial_seconds", default=0.5, exclusive_minimum=0.0
        ),
        reconnect_max_seconds=table.number(
            "reconnect_max_seconds", default=30.0, exclusive_minimum=0.0
        ),
        conflict_backoff_seconds=table.number(
            "conflict_backoff_seconds", default=60.0, exclusive_minimum=0.0
        ),
        max_payload_bytes=table.integer("max_payload_bytes", default=64 * 1024, minimum=64),
        max_future_seconds=table.number("max_future_seconds", default=5.0, minimum=0.0),
    )
    table.finish()
    return config


def _websocket_source(table: Table, name: str) -> WebsocketSourceConfig:
    url = table.convert("url", _ws_url)
    subscribe = table.convert("subscribe", _subscribe_message) if "subscribe" in table else None
    headers_table = table.table("headers")
    headers = tuple((key, headers_table.string(key)) for key in headers_table.free_keys())
    fields_table = table.table("fields")
    match_table = table.table("match")
    match: list[tuple[str, str | int | float | bool]] = []
    for key in match_table.free_keys():
        value = match_table.convert(key, _match_value)
        if value is not None:
            match.append((key, value))
    fixed_symbol = table.convert("symbol", normalize_symbol) if "symbol" in table else None
    fields = FieldMap(
        symbol=fields_table.field_path("symbol", default="symbol"),
        price=fields_table.field_path("price", default="price"),
        ts=fields_table.field_path("ts", default="ts"),
        volume=fields_table.field_path("volume", default="volume"),
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
        ping_interval_seconds=table.number(
            "ping_interval_seconds", default=5.0, exclusive_minimum=0.0
        ),
        ping_timeout_seconds=table.number(
            "ping_timeout_seconds", default=5.0, exclusive_minimum=0.0
        ),
        open_timeout_seconds=table.number(
            "open_timeout_seconds", default=10.0, exclusive_minimum=0.0
        ),
        reconnect_initial_seconds=table.number(
            "reconnect_initial_seconds", default=0.5, exclusive_minimum=0.0
        ),
        reconnect_max_seconds=table.number(
            "reconnect_max_seconds", default=30.0, exclusive_minimum=0.0
        ),
        max_message_bytes=table.integer("max_message_bytes", default=1024 * 1024, minimum=64),
        max_future_seconds=table.number("max_future_seconds", default=5.0, minimum=0.0),
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
        rate=table.number("rate", default=1.0, exclusive_minimum=0.0),
        volatility=table.number("volatility", default=0.0005, minimum=0.0),
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


def _articles(table: Table, base_dir: Path) -> ArticlesConfig:
    directory = table.existing_dir("dir", base_dir) if "dir" in table else None
    feed_url = table.convert("feed_url", http_url) if "feed_url" in table else None
    defaults = table.table("rule_defaults")
    rule_defaults = RuleDefaults(
        confirm_ticks=defaults.integer("confirm_ticks", default=1, minimum=1),
        confirm_seconds=defaults.number("confirm_seconds", default=0.0, minimum=0.0),
        hysteresis=defaults.number("hysteresis", default=0.0, minimum=0.0),
        cooldown_seconds=defaults.number("cooldown_seconds", default=0.0, minimum=0.0),
    )
    defaults.finish()
    config = ArticlesConfig(
        dir=directory,
        dir_poll_seconds=table.number("dir_poll_seconds", default=1.0, exclusive_minimum=0.0),
        feed_url=feed_url,
        feed_poll_seconds=table.number("feed_poll_seconds", default=60.0, exclusive_minimum=0.0),
        max_bytes=table.integer("max_bytes", default=MAX_ARTICLE_BYTES, minimum=1),
        auto_levels=table.boolean("auto_levels", default=False),
        rule_defaults=rule_defaults,
    )
    table.finish()
    return config


def _aliases(table: Table) -> dict[str, str]:
    aliases = dict(DEFAULT_ALIASES)
    for name in table.free_keys():
        if not name.strip():
            table.problem(f'"{name}"', "expected an instrument name, got an empty key")
            continue
        symbol = table.convert(name, normalize_symbol)
        if symbol:
            aliases[name.strip()] = symbol
    return aliases


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


def _rules(tables: list[Table]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    ids: dict[str, str] = {}
    for table in tables:
        rule_id = table.string("id", pattern=_RULE_ID, pattern_hint="letters, digits and . _ : -")
        if rule_id in ids:
            table.problem("id", f"duplicate rule id {show_value(rule_id)} (also {ids[rule_id]})")
        elif rule_id:
            ids[rule_id] = table.path
        rule_type = table.choice("type", ("level", "range"), default="level")
        symbol = table.convert("symbol", normalize_symbol)
        common: dict[str, Any] = {
            "id": rule_id,
            "symbol": symbol,
            "confirm_ticks": table.integer("confirm_ticks", default=1, minimum=1),
            "confirm_seconds": table.number("confirm_seconds", default=0.0, minimum=0.0),
            "hysteresis": table.number("hysteresis", default=0.0, minimum=0.0),
            "cooldown_seconds": table.number("cooldown_seconds", default=0.0, minimum=0.0),
        }
        trigger = table.choice("trigger", ("tick", "bar_close"), default="tick")
        common["trigger"] = trigger
        if trigger == "bar_close":
            common["bar"] = table.duration("bar", default="1m")
        elif "bar" in table:
            table.problem(
                "bar", 'is only used with trigger = "bar_close"; remove it or set trigger'
            )
        rule: Rule | None = None
        if rule_type == "range":
            low = table.number("low", exclusive_minimum=0.0)
            high = table.number("high", exclusive_minimum=0.0)
            if table.valid("low", "high") and low >= high:
                table.problem(
                    "high",
                    f"expected a price above low ({show_value(low)}), got {show_value(high)}",
                )
            hysteresis = common["hysteresis"]
            if table.valid("hysteresis", "high") and hysteresis >= high:
                table.problem(
                    "hysteresis",
                    f"expected less than high ({show_value(high)}), got {show_value(hysteresis)}",
                )
            table.finish()
            if table.ok:
                rule = RangeRule(low=low, high=high, **common)
        else:
            level = table.number("level", exclusive_minimum=0.0)
            direction = table.choice("direction", ("below", "above"))
            hysteresis = common["hysteresis"]
            if table.valid("hysteresis", "level", "direction") and (
                direction == "above" and hysteresis >= level
            ):
                table.problem(
                    "hysteresis",
                    f"expected less than the level ({show_value(level)}) for an above rule, "
                    f"got {show_value(hysteresis)}",
                )
            table.finish()
            if table.ok:
                rule = LevelRule(level=level, direction=cast(Direction, direction), **common)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)
