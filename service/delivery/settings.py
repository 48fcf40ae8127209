"""The delivery part of alerts.toml: subscribers, channels, the websocket hub, retries.

Tables: ``[delivery]`` (retries), ``[websocket]`` (the dashboards' hub),
``[email]``, ``[push]``, ``[webhook]``, ``[mqtt_out]`` and ``[[subscribers]]``.
Each reader takes a :class:`~service.config_table.Table` and records problems
by path, as the rest of the config does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast, get_args

from service.config_table import Table, http_url, mqtt_url, show_value
from service.delivery.mail_address import email_address_problem
from service.delivery.subscribers import Subscriber
from service.models import AlertKind
from service.symbols import normalize_symbol

_SUBSCRIBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_TOPIC_PREFIX = re.compile(r"^[^#+\0]{1,200}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryConfig:
    """How often a failed delivery is tried again, and how many are sent at once."""

    max_attempts: int = 8
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 900.0
    concurrency: int = 16  # per channel (email uses one SMTP connection)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebsocketHubConfig:
    """The websocket server traders' dashboards connect to."""

    host: str = "127.0.0.1"
    port: int = 8765
    tokens: tuple[str, ...] = field(default=(), repr=False)
    allowed_origins: tuple[str, ...] = ()
    tick_hz: float = 4.0
    # Alerts waiting for a client that reads too slowly; past it the client is
    # disconnected (1013) and comes back with "since".
    max_pending_alerts: int = 1_000
    max_message_bytes: int = 64 * 1024
    # Bytes in a client's socket buffer past which it counts as slow.
    write_limit_bytes: int = 256 * 1024
    ping_interval_seconds: float = 20.0
    ping_timeout_seconds: float = 20.0
    # The opening handshake (request line and headers) must be done within this.
    open_timeout_seconds: float = 5.0
    # A client that has not subscribed this long after connecting is closed (1008).
    subscribe_timeout_seconds: float = 10.0
    # Open connections per client address (0: no limit); see [http] for proxies.
    max_connections_per_client: int = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailConfig:
    """The SMTP server mail goes through (aiosmtplib)."""

    host: str
    port: int = 587
    starttls: bool = True
    tls: bool = False  # implicit TLS, usually port 465
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "alerts@localhost"
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PushConfig:
    """Push through apprise URLs, and browser Web Push with VAPID keys."""

    vapid_private_key: str | None = field(default=None, repr=False)
    vapid_subject: str = "mailto:alerts@localhost"
    timeout_seconds: float = 10.0
    # Web Push endpoints only on these hosts and their subdomains (empty: any public host).
    endpoint_hosts: tuple[str, ...] = ()
    # Web Push to loopback and private addresses too: only for a private push service.
    allow_private_endpoints: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttOutConfig:
    """Publish every alert to ``{topic_prefix}/{symbol}`` on a broker."""

    host: str
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "strykr-alerts-out"
    topic_prefix: str = "alerts"
    qos: Literal[0, 1] = 1
    keepalive_seconds: int = 3  # as the MQTT source: a dead link is told within 2 x this + 1 s
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    name: str = "mqtt_out"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def topic(self, symbol: str) -> str:
        return f"{self.topic_prefix}/{symbol}"


def read_delivery(table: Table) -> DeliveryConfig:
    config = DeliveryConfig(
        max_attempts=table.integer("max_attempts", default=8, minimum=1),
        retry_initial_seconds=table.number("retry_initial_seconds", default=5.0, minimum=0.01),
        retry_max_seconds=table.number("retry_max_seconds", default=900.0, minimum=0.01),
        concurrency=table.integer("concurrency", default=16, minimum=1),
    )
    table.finish()
    return config


def read_websocket_hub(table: Table) -> WebsocketHubConfig:
    config = WebsocketHubConfig(
        host=table.string("host", default="127.0.0.1"),
        port=_port(table, default=8765),
        tokens=table.strings("tokens"),
        allowed_origins=table.strings("allowed_origins"),
        tick_hz=table.number("tick_hz", default=4.0, exclusive_minimum=0.0),
        max_pending_alerts=table.integer("max_pending_alerts", default=1_000, minimum=1),
        max_message_bytes=table.integer("max_message_bytes", default=64 * 1024, minimum=256),
        write_limit_bytes=table.integer("write_limit_bytes", default=256 * 1024, minimum=1024),
        ping_interval_seconds=table.number("ping_interval_seconds", default=20.0, minimum=0.1),
        ping_timeout_seconds=table.number("ping_timeout_seconds", default=20.0, minimum=0.1),
        open_timeout_seconds=table.number(
            "open_timeout_seconds", default=5.0, exclusive_minimum=0.0
        ),
        subscribe_timeout_seconds=table.number(
            "subscribe_timeout_seconds", default=10.0, exclusive_minimum=0.0
        ),
        max_connections_per_client=table.integer(
            "max_connections_per_client", default=32, minimum=0
        ),
    )
    table.finish()
    return config


def read_email(table: Table) -> EmailConfig:
    sender = table.string("from")
    problem = email_address_problem(sender) if sender else None
    if problem is not None:
        table.problem("from", problem)
    config = EmailConfig(
        host=table.string("host"),
        port=_port(table, default=587),
        starttls=table.boolean("starttls", default=True),
        tls=table.boolean("tls", default=False),
        username=table.string("username", default="") or None,
        password=table.string("password", default="") or None,
        sender=sender,
        timeout_seconds=table.number("timeout_seconds", default=30.0, exclusive_minimum=0.0),
    )
    if config.tls and config.starttls and "starttls" in table:
        table.problem("starttls", "tls = true already encrypts the connection; drop starttls")
    table.finish()
    return config


def read_push(table: Table) -> PushConfig:
    config = PushConfig(
        vapid_private_key=table.string("vapid_private_key", default="") or None,
        vapid_subject=table.string("vapid_subject", default="mailto:alerts@localhost"),
        timeout_seconds=table.number("timeout_seconds", default=10.0, exclusive_minimum=0.0),
        endpoint_hosts=tuple(host.strip().lower() for host in table.strings("endpoint_hosts")),
        allow_private_endpoints=table.boolean("allow_private_endpoints", default=False),
    )
    for index, host in enumerate(config.endpoint_hosts):
        if "." not in host.strip(".") or "/" in host or ":" in host:
            table.problem(
                f"endpoint_hosts[{index}]",
                f"expected a host name such as fcm.googleapis.com, got {show_value(host)}",
            )
    if not config.vapid_subject.startswith(("mailto:", "https:")):
        table.problem(
            "vapid_subject", "expected a mailto: or https: URL the push service can reach"
        )
    table.finish()
    return config


def read_webhook(table: Table) -> WebhookConfig:
    config = WebhookConfig(
        timeout_seconds=table.number("timeout_seconds", default=10.0, exclusive_minimum=0.0)
    )
    table.finish()
    return config


def read_mqtt_out(table: Table, base_dir: Path) -> MqttOutConfig:
    tls, host, port = table.convert("url", mqtt_url) or (False, "", 1883)
    qos = table.integer("qos", default=1)
    if qos not in (0, 1):
        table.problem("qos", f"expected 0 or 1, got {qos}")
    config = MqttOutConfig(
        host=host,
        port=port,
        tls=tls,
        ca_file=table.existing_file("ca_file", base_dir) if "ca_file" in table else None,
        username=table.string("username", default="") or None,
        password=table.string("password", default="") or None,
        client_id=table.string(
            "client_id",
            default="strykr-alerts-out",
            pattern=_CLIENT_ID,
            pattern_hint="letters, digits and . _ : - (up to 64)",
        ),
        topic_prefix=table.string(
            "topic_prefix",
            default="alerts",
            pattern=_TOPIC_PREFIX,
            pattern_hint="a topic without wildcards",
        ).rstrip("/"),
        qos=cast(Literal[0, 1], qos if qos in (0, 1) else 1),
        keepalive_seconds=table.integer("keepalive_seconds", default=3, minimum=1),
    )
    table.finish()
    return config


def read_subscribers(tables: list[Table], *, email: bool) -> tuple[Subscriber, ...]:
    """The static subscribers: vouched for by whoever wrote the file, so confirmed."""
    subscribers: list[Subscriber] = []
    ids: dict[str, str] = {}
    for table in tables:
        subscriber_id = table.string(
            "id", pattern=_SUBSCRIBER_ID, pattern_hint="letters, digits and . _ : @ - (up to 64)"
        )
        if subscriber_id in ids:
            table.problem(
                "id",
                f"duplicate subscriber {show_value(subscriber_id)} (also {ids[subscriber_id]})",
            )
        elif subscriber_id:
            ids[subscriber_id] = table.path
        address = table.string("email", default="")
        problem = email_address_problem(address) if address else None
        if problem is not None:
            table.problem("email", problem)
        if address and not email:
            table.problem("email", "no [email] server is configured to send it through")
        push = _push_urls(table)
        webhook = table.convert("webhook", _optional(http_url), default="")
        secret = table.string("webhook_secret", default="")
        if webhook and not secret:
            table.problem(
                "webhook_secret",
                'missing; receivers check X-Strykr-Signature with it (write "env:NAME")',
            )
        symbols = _symbols(table)
        kinds = _kinds(table)
        if table.valid("email", "push", "webhook") and not (address or push or webhook):
            table.problem("id", "no channel: give email, push or webhook")
        table.finish()
        subscribers.append(
            Subscriber(
                id=subscriber_id,
                email=address or None,
                push=push,
                webhook=webhook or None,
                webhook_secret=secret or None,
                symbols=symbols,
                kinds=kinds,
            )
        )
    return tuple(subscribers)


def _optional(parse: Callable[[object], str]) -> Callable[[object], str]:
    """``parse``, except that the empty default stays empty."""
    return lambda value: "" if value == "" else parse(value)


def _port(table: Table, *, default: int) -> int:
    port = table.integer("port", default=default, minimum=0)
    if port > 65535:
        table.problem("port", f"expected a port from 0 to 65535, got {port}")
    return port


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"expected an array of non-empty strings, got {show_value(value)}")
    return list(value)


def _symbols(table: Table) -> tuple[str, ...]:
    def parse(value: object) -> tuple[str, ...]:
        items = _string_list(value)
        if not items:
            raise ValueError('expected at least one symbol, or ["*"] for every symbol')
        if "*" in items:
            return ("*",)
        return tuple(dict.fromkeys(normalize_symbol(item) for item in items))

    return table.convert("symbols", parse) or ()


def _kinds(table: Table) -> tuple[str, ...]:
    def parse(value: object) -> tuple[str, ...]:
        items = _string_list(value)
        for item in items:
            if item not in ALERT_KINDS:
                raise ValueError(
                    f"expected kinds among {', '.join(ALERT_KINDS)}, got {show_value(item)}"
                )
        return tuple(dict.fromkeys(items))

    return table.convert("kinds", parse, default=[]) or ()


def _push_urls(table: Table) -> tuple[str, ...]:
    urls = table.strings("push")
    if urls:
        from service.delivery.push import push_url_problem  # apprise loads only when needed

        for index, url in enumerate(urls):
            problem = push_url_problem(url)
            if problem is not None:
                table.problem(f"push[{index}]", problem)
    return urls
