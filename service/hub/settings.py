"""The ``[websocket]`` table: the server traders' dashboards connect to."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.config_table import Table, read_port


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


def read_websocket_hub(table: Table) -> WebsocketHubConfig | None:
    """``None`` when ``enabled = false``."""
    enabled = table.boolean("enabled", default=True)
    table.reads(WebsocketHubConfig)
    config = WebsocketHubConfig(
        host=table.string("host"),
        port=read_port(table),
        tokens=table.strings("tokens"),
        allowed_origins=table.strings("allowed_origins"),
        tick_hz=table.number("tick_hz", exclusive_minimum=0.0),
        max_pending_alerts=table.integer("max_pending_alerts", minimum=1),
        max_message_bytes=table.integer("max_message_bytes", minimum=256),
        write_limit_bytes=table.integer("write_limit_bytes", minimum=1024),
        ping_interval_seconds=table.number("ping_interval_seconds", minimum=0.1),
        ping_timeout_seconds=table.number("ping_timeout_seconds", minimum=0.1),
        open_timeout_seconds=table.number("open_timeout_seconds", exclusive_minimum=0.0),
        subscribe_timeout_seconds=table.number("subscribe_timeout_seconds", exclusive_minimum=0.0),
        max_connections_per_client=table.integer("max_connections_per_client", minimum=0),
    )
    table.finish()
    return config if enabled else None
