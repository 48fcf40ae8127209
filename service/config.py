"""alerts.toml → typed, validated, frozen configuration.

:func:`load_config` reads the file with ``tomllib`` and checks every value. It
collects every problem it finds (not only the first) and raises one
:class:`~service.errors.ConfigError` whose lines name the value's path,
what was expected and what was found::

    rules[2].direction: expected "below" or "above", got "down"

Unknown keys are errors too, so a typo never silently falls back to a
default. A string ``"env:NAME"`` anywhere stands for the environment variable
``NAME``: secrets and per-machine paths stay out of the file.

This module only loads the file and assembles :class:`Config`: each package
owns its tables, their dataclasses (where every default is written, once)
and their readers: ``[engine]`` and ``[[rules]]`` in :mod:`service.rules.settings`,
``[[sources]]`` in :mod:`service.streams.settings`, ``[articles]`` and
``[aliases]`` in :mod:`service.articles.settings`, ``[websocket]`` in
:mod:`service.hub.settings`, the channels and ``[[subscribers]]`` in
:mod:`service.delivery.settings`, ``[http]`` in :mod:`service.api.settings`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from service.api.settings import HttpConfig, read_http
from service.articles.instruments import DEFAULT_ALIASES
from service.articles.settings import ArticlesConfig, read_aliases, read_articles
from service.cluster import ClusterConfig, read_cluster
from service.config_table import Table, http_url
from service.delivery.settings import (
    DeliveryConfig,
    EmailConfig,
    MqttOutConfig,
    PushConfig,
    WebhookConfig,
    read_delivery,
    read_email,
    read_mqtt_out,
    read_push,
    read_subscribers,
    read_webhook,
)
from service.errors import ConfigError
from service.hub.settings import WebsocketHubConfig, read_websocket_hub
from service.journal.records import Subscriber
from service.markets import MarketsConfig, read_markets
from service.models import Rule
from service.processing.history import HistoryConfig, read_history
from service.rules.settings import EngineConfig, read_engine, read_rules
from service.streams.settings import SourceConfig, read_sources

LogFormat = Literal["auto", "console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]

DEFAULT_JOURNAL = "var/alerts.db"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    log_level: LogLevel = "info"
    log_format: LogFormat = "auto"
    # How often the running service logs its counters (pipeline_stats); 0 never.
    stats_seconds: float = 60.0
    # The alert journal and delivery outbox: a SQLite file (a Path), a PostgreSQL server
    # (its postgresql:// URL, a str); None keeps it in memory.
    journal: Path | str | None = None
    # Where people reach the HTTP API: the base of links in mail (unsubscribe).
    public_url: str = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    path: Path | None = None
    service: ServiceConfig = field(default_factory=ServiceConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    sources: tuple[SourceConfig, ...] = ()
    rules: tuple[Rule, ...] = ()
    markets: MarketsConfig = field(default_factory=MarketsConfig)
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
    history: HistoryConfig = field(default_factory=HistoryConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

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
    engine = read_engine(root.table("engine"))
    sources = read_sources(root.tables("sources"), base)
    rules = read_rules(root.tables("rules"))
    markets = read_markets(root.table("markets"))
    articles = read_articles(root.table("articles"), base)
    aliases = read_aliases(root.table("aliases"))
    delivery = read_delivery(root.table("delivery"))
    websocket = read_websocket_hub(root.table("websocket"))
    email = read_email(root.table("email")) if "email" in root else None
    push = read_push(root.table("push"))
    webhook = read_webhook(root.table("webhook"))
    mqtt_out = read_mqtt_out(root.table("mqtt_out"), base) if "mqtt_out" in root else None
    subscribers = read_subscribers(root.tables("subscribers"), email=email is not None)
    http = read_http(root.table("http"))
    history = read_history(root.table("history"))
    cluster = read_cluster(root.table("cluster"))
    root.finish()
    if problems:
        raise ConfigError(source, problems)
    return Config(
        path=path,
        service=service,
        engine=engine,
        sources=sources,
        rules=rules,
        markets=markets,
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
        history=history,
        cluster=cluster,
    )


def _service(table: Table, base_dir: Path) -> ServiceConfig:
    table.reads(ServiceConfig)
    level = table.choice("log_level", ("debug", "info", "warning", "error"))
    fmt = table.choice("log_format", ("auto", "console", "json"))
    stats_seconds = table.number("stats_seconds", minimum=0.0)
    journal = table.string("journal", default=DEFAULT_JOURNAL)
    public_url = table.convert("public_url", http_url)
    table.finish()
    return ServiceConfig(
        log_level=cast(LogLevel, level),
        log_format=cast(LogFormat, fmt),
        stats_seconds=stats_seconds,
        journal=_journal(table, journal, base_dir),
        public_url=(public_url or "").rstrip("/"),
    )


def _journal(table: Table, value: str, base_dir: Path) -> Path | str | None:
    """A file's path (relative to the config), a PostgreSQL URL, or None for memory."""
    if value in ("", ":memory:"):
        return None
    if value.startswith(POSTGRES_SCHEMES):
        parts = urlsplit(value)
        if not parts.hostname or not parts.path.strip("/"):
            table.problem(
                "journal",
                "expected postgresql://user@host:5432/database (the password in "
                "PGPASSWORD, or the whole URL as env:NAME)",
            )
        return value
    return _relative(value, base_dir)


def _relative(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path
