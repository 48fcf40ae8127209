"""New alerts of a shared PostgreSQL journal, as engines commit them: a gateway's input.

The journal notifies :data:`~service.journal.postgres.ALERTS_CHANNEL` in each
transaction that stores alerts; the feed listens, and at each notification
(and at least every :data:`CATCH_UP_S`, so a notification missed while the
connection was down loses nothing) reads what was stored after the last
alert it gave out, by position. Positions commit in order (the journal's
alerts lock), so reading on from the last one never skips an alert.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from service.errors import JournalError
from service.journal.postgres import ALERTS_CHANNEL, CONNECT_TIMEOUT_S, redact
from service.journal.roles import AlertLog
from service.models import AlertPayload

log = structlog.get_logger("service.journal")

# Without a notification, the journal is read this often all the same.
CATCH_UP_S = 1.0
# Alerts read at once; a longer backlog is read in as many turns as it needs.
READ_LIMIT = 1_000
# After a lost connection, the next attempt waits this long.
RETRY_S = 1.0


class AlertFeed:
    """Gives each alert committed after :meth:`start` to ``publish``, once, in commit order."""

    def __init__(
        self,
        url: str,
        alerts: AlertLog,
        publish: Callable[[AlertPayload], None],
        *,
        catch_up_s: float = CATCH_UP_S,
    ) -> None:
        self.url = url
        self.alerts = alerts
        self.publish = publish
        self.catch_up_s = catch_up_s
        self.position: int | None = None  # the last alert given out
        self.published = 0
        self.notifications = 0
        self.listening = False

    def start(self) -> None:
        """From now: alerts already stored are not given (a client resumes them with ``since``)."""
        self.position = self.alerts.last_seq()

    def catch_up(self) -> int:
        """Give out every alert stored after the last one given; how many there were."""
        if self.position is None:
            self.start()
        assert self.position is not None
        given = 0
        while True:
            batch = self.alerts.alerts_since_seq(self.position, limit=READ_LIMIT)
            for position, payload in batch:
                self.publish(payload)
                self.position = position
            given += len(batch)
            if len(batch) < READ_LIMIT:
                break
        self.published += given
        return given

    async def run(self) -> None:
        """Listen and read, until cancelled; a lost connection is made again."""
        while True:
            try:
                await self._listen()
            except (psycopg.Error, JournalError) as error:
                self.listening = False
                log.warning(
                    "alert_feed_interrupted",
                    journal=redact(self.url),
                    error=str(error).strip().splitlines()[0] if str(error).strip() else "",
                    hint=f"connecting again in {RETRY_S:g} s; nothing is lost",
                )
                await asyncio.sleep(RETRY_S)

    async def _listen(self) -> None:
        connection: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        async with connection:
            await connection.execute(f"LISTEN {ALERTS_CHANNEL}")
            self.listening = True
            while True:
                # Read after listening: what committed before LISTEN is read here.
                self.catch_up()
                async for _notice in connection.notifies(timeout=self.catch_up_s, stop_after=1):
                    self.notifications += 1
