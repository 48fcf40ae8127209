"""The delivery part of alerts.toml: subscribers, channels, retries.

Tables: ``[delivery]`` (retries), ``[email]``, ``[push]``, ``[webhook]``,
``[mqtt_out]`` and ``[[subscribers]]``. Each reader takes a
:class:`~service.config_table.Table` and records problems by path, as the rest
of the config does; defaults are written once, in the dataclasses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from service.config_table import (
    MQTT_CLIENT_ID,
    MQTT_CLIENT_ID_HINT,
    Table,
    http_url,
    mqtt_url,
    read_port,
    show_value,
)
from service.delivery.apprise_urls import push_url_problem
from service.delivery.mail_address import email_address_problem
from service.journal.records import Subscriber
from service.models import ALERT_KINDS
from service.mqtt_common import Broker
from service.symbols import normalize_symbol

_SUBSCRIBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_TOPIC_PREFIX = re.compile(r"^[^#+\0]{1,200}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryConfig:
    """How often a failed delivery is tried again, and how many are sent at once."""

    max_attempts: int = 8
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 900.0
    concurrency: int = 16  # per channel (email uses one SMTP connection)
    # A worker holds the deliveries it took this long: longer than any send may take (the
    # channels' timeouts), so no other worker sends them meanwhile. A worker that dies
    # with them lets them fall due again when it ends.
    lease_seconds: float = 120.0


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

    @property
    def broker(self) -> Broker:
        return Broker.of(self)

    def topic(self, symbol: str) -> str:
        return f"{self.topic_prefix}/{symbol}"


def read_delivery(table: Table) -> DeliveryConfig:
    table.reads(DeliveryConfig)
    config = DeliveryConfig(
        max_attempts=table.integer("max_attempts", minimum=1),
        retry_initial_seconds=table.number("retry_initial_seconds", minimum=0.01),
        retry_max_seconds=table.number("retry_max_seconds", minimum=0.01),
        concurrency=table.integer("concurrency", minimum=1),
        lease_seconds=table.number("lease_seconds", minimum=1.0),
    )
    table.finish()
    return config


def read_email(table: Table) -> EmailConfig:
    table.reads(EmailConfig)
    sender = table.string("from")
    problem = email_address_problem(sender) if sender else None
    if problem is not None:
        table.problem("from", problem)
    config = EmailConfig(
        host=table.string("host"),
        port=read_port(table),
        starttls=table.boolean("starttls"),
        tls=table.boolean("tls"),
        username=table.string("username") or None,
        password=table.string("password") or None,
        sender=sender,
        timeout_seconds=table.number("timeout_seconds", exclusive_minimum=0.0),
    )
    if config.tls and config.starttls and "starttls" in table:
        table.problem("starttls", "tls = true already encrypts the connection; drop starttls")
    table.finish()
    return config


def read_push(table: Table) -> PushConfig:
    table.reads(PushConfig)
    config = PushConfig(
        vapid_private_key=table.string("vapid_private_key") or None,
        vapid_subject=table.string("vapid_subject"),
        timeout_seconds=table.number("timeout_seconds", exclusive_minimum=0.0),
        endpoint_hosts=tuple(host.strip().lower() for host in table.strings("endpoint_hosts")),
        allow_private_endpoints=table.boolean("allow_private_endpoints"),
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
    table.reads(WebhookConfig)
    config = WebhookConfig(timeout_seconds=table.number("timeout_seconds", exclusive_minimum=0.0))
    table.finish()
    return config


def read_mqtt_out(table: Table, base_dir: Path) -> MqttOutConfig:
    table.reads(MqttOutConfig)
    tls, host, port = table.convert("url", mqtt_url) or (False, "", 0)
    qos = table.integer("qos")
    if qos not in (0, 1):
        table.problem("qos", f"expected 0 or 1, got {qos}")
    config = MqttOutConfig(
        host=host,
        port=port,
        tls=tls,
        ca_file=table.existing_file("ca_file", base_dir) if "ca_file" in table else None,
        username=table.string("username") or None,
        password=table.string("password") or None,
        client_id=table.string(
            "client_id", pattern=MQTT_CLIENT_ID, pattern_hint=MQTT_CLIENT_ID_HINT
        ),
        topic_prefix=table.string(
            "topic_prefix", pattern=_TOPIC_PREFIX, pattern_hint="a topic without wildcards"
        ).rstrip("/"),
        qos=cast(Literal[0, 1], qos if qos in (0, 1) else 1),
        keepalive_seconds=table.integer("keepalive_seconds", minimum=1),
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
        for index, url in enumerate(urls):
            problem = push_url_problem(url)
            if problem is not None:
                table.problem(f"push[{index}]", problem)
    return urls
