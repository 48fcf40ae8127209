"""What every MQTT client of the service (ticks in, alerts out) connects with."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiomqtt

# One connection attempt: the TCP connect, TLS and the CONNACK.
CONNECT_TIMEOUT_S = 10.0
# Nagle's algorithm holds small packets back for up to 40 ms: ticks and alerts are small.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def tls_context(tls: bool, ca_file: Path | None) -> ssl.SSLContext | None:
    """The TLS context of an mqtts:// connection (``ca_file`` trusts a private CA), or ``None``."""
    if not tls:
        return None
    return ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))


class BrokerSettings(Protocol):
    """What an MQTT client's settings say of its broker (a tick source's, MQTT out's)."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls(self) -> bool: ...
    @property
    def ca_file(self) -> Path | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def client_id(self) -> str: ...
    @property
    def keepalive_seconds(self) -> int: ...
    @property
    def reconnect_initial_seconds(self) -> float: ...
    @property
    def reconnect_max_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Broker:
    """Where an MQTT client connects, and as whom: a tick source's broker, for the
    cluster's price relay and feed (which connect to the engines' broker)."""

    name: str
    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str
    keepalive_seconds: int = 3
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0

    @classmethod
    def of(cls, settings: BrokerSettings) -> Broker:
        return cls(
            name=settings.name,
            host=settings.host,
            port=settings.port,
            tls=settings.tls,
            ca_file=settings.ca_file,
            username=settings.username,
            password=settings.password,
            client_id=settings.client_id,
            keepalive_seconds=settings.keepalive_seconds,
            reconnect_initial_seconds=settings.reconnect_initial_seconds,
            reconnect_max_seconds=settings.reconnect_max_seconds,
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def client(self, identifier: str, *, clean_session: bool = True) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host,
            self.port,
            identifier=identifier,
            username=self.username,
            password=self.password,
            timeout=CONNECT_TIMEOUT_S,
            keepalive=self.keepalive_seconds,
            tls_context=tls_context(self.tls, self.ca_file),
            socket_options=NO_DELAY,
            clean_session=clean_session,
        )
