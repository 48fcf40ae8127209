"""Staying connected: one loop for every client that must keep a link up, and its state.

:func:`reconnecting` is the loop: run a session (connect, work until the link
ends), and when it fails, wait a capped, jittered backoff and start again.
The MQTT source, the websocket feed, MQTT out and the article feed all run on it.

:class:`Link` is the state it keeps, and its log lines: one per change. A
session calls :meth:`Link.up` once connected; each failure calls
:meth:`Link.down`, which returns how long to wait. The first failure after a
connection is ``<prefix>_disconnected``, the first while never connected is
``<prefix>_unreachable`` (both warnings); the retries that follow are debug
lines, so a broker down for an hour costs one warning, not thousands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal, NoReturn, Protocol

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


async def reconnecting(
    link: Link,
    session: Callable[[], Awaitable[None]],
    *,
    retry_on: tuple[type[Exception], ...],
    describe: Callable[[Exception], str] = lambda error: str(error) or type(error).__name__,
    delay_after: Callable[[str, float], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> NoReturn:
    """Run ``session`` again and again: each failure of ``retry_on`` waits a backoff first.

    ``session`` is one connection's whole life: it connects, calls
    :meth:`Link.up`, works, and ends by raising (a clean end the caller turns
    into an error too). A failure, alone or as every exception of an
    exception group (a session's task group), is logged by the link;
    ``delay_after(error, delay)`` may change the wait (a client id taken over
    waits longer). Anything else is a bug and propagates.
    """
    while True:
        try:
            await session()
        except Exception as error:
            failure = _failure_of(error, retry_on)
            if failure is None:
                raise
            text = describe(failure)
            delay = link.down(text)
            if delay_after is not None:
                delay = delay_after(text, delay)
            await sleep(delay)
        else:
            raise RuntimeError(f"the session of {link.source} ended without an error")


def _failure_of(error: Exception, kinds: tuple[type[Exception], ...]) -> Exception | None:
    """``error`` if it is one of ``kinds``, or the first of a group made only of them."""
    if isinstance(error, kinds):
        return error
    if isinstance(error, ExceptionGroup):
        matched, rest = error.split(kinds)
        if matched is not None and rest is None:
            first: Exception = matched.exceptions[0]
            return _failure_of(first, kinds) if isinstance(first, ExceptionGroup) else first
    return None
