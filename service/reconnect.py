"""The connection state of a reconnecting source, and its log lines: one per change.

A source calls :meth:`Link.up` when it is connected and :meth:`Link.down`
when a connection attempt fails or a connection ends; ``down`` returns how
long to wait before the next attempt (capped, jittered backoff). The first
failure after a connection is ``<prefix>_disconnected``, the first while never
connected is ``<prefix>_unreachable`` (both warnings); the retries that follow
are debug lines, so a broker down for an hour costs one warning, not thousands.
"""

from __future__ import annotations

from typing import Literal, Protocol

import structlog

from service.backoff import retry_delay

log = structlog.get_logger("service.reconnect")


class ReconnectingSourceConfig(Protocol):
    """What a link needs from a source's config (MQTT and websocket sources have it)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def reconnect_initial_seconds(self) -> float: ...
    @property
    def reconnect_max_seconds(self) -> float: ...


class Link:
    """Whether a source is connected, how often it has been, and how long to wait next."""

    def __init__(
        self, *, source: str, url: str, prefix: str, initial_s: float, maximum_s: float
    ) -> None:
        self.source = source
        self.url = url
        self.prefix = prefix
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.connected = False
        self.connections = 0
        self.failures = 0  # since the last connection

    @property
    def state(self) -> Literal["connected", "disconnected"]:
        """What /readyz and the metrics report of the link."""
        return "connected" if self.connected else "disconnected"

    @classmethod
    def for_source(cls, config: ReconnectingSourceConfig, *, prefix: str) -> Link:
        return cls(
            source=config.name,
            url=config.url,
            prefix=prefix,
            initial_s=config.reconnect_initial_seconds,
            maximum_s=config.reconnect_max_seconds,
        )

    def up(self, **details: object) -> None:
        """The source is connected (and subscribed, where it subscribes)."""
        self.connected = True
        self.connections += 1
        self.failures = 0
        log.info(
            f"{self.prefix}_connected",
            source=self.source,
            url=self.url,
            **details,
            reconnect=self.connections > 1,
        )

    def down(self, error: str) -> float:
        """A connection ended or could not be made; return the seconds to wait before retrying."""
        self.failures += 1
        delay = retry_delay(self.failures, initial=self.initial_s, maximum=self.maximum_s)
        details = {
            "source": self.source,
            "url": self.url,
            "error": error,
            "retry_in_s": round(delay, 2),
        }
        if self.connected:
            log.warning(f"{self.prefix}_disconnected", **details)
        elif self.failures == 1:
            log.warning(
                f"{self.prefix}_unreachable",
                **details,
                hint=f"retrying with backoff up to {self.maximum_s:g} s",
            )
        else:
            log.debug(f"{self.prefix}_retry", attempt=self.failures, **details)
        self.connected = False
        return delay
