"""Who runs an engine shard: the one process that holds its PostgreSQL advisory lock.

An engine shard may be started more than once (on other machines): the
first to take the shard's lock runs it, the others are its standbys and
wait. The lock is held by a connection of its own for the life of the
process; when that process dies its connection closes, the server drops the
lock, and a standby takes it within :data:`POLL_S`, restores the shard's last
checkpoint, and goes on. Every commit of the shard's checkpoint checks, in
its own transaction, that the lock is still this process's
(:meth:`PostgresJournal.fence <service.journal.postgres.PostgresJournal.fence>`),
so one that lost it (a network split) can write nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from service.cluster import MAX_SHARDS, ClusterConfig
from service.errors import JournalError
from service.journal.postgres import CONNECT_TIMEOUT_S, redact

log = structlog.get_logger("service.journal")

# The advisory locks' first key for engine shards ("STKE"); the second is the shard's.
LEASE_CLASS = 0x53544B45
# A standby asks for the lock this often; the holder checks its connection as often.
POLL_S = 0.5


def lease_key(cluster: ClusterConfig) -> tuple[int, int]:
    """The two keys of the shard's lock: shard 1 of 2 and shard 1 of 3 are different shards."""
    return LEASE_CLASS, cluster.shards * MAX_SHARDS + cluster.shard


class ShardLease:
    """The advisory lock of one engine shard, taken by :meth:`acquire`, held until :meth:`close`."""

    def __init__(
        self,
        url: str,
        cluster: ClusterConfig,
        *,
        on_active: Callable[[tuple[int, int], int], None] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        """``on_active(key, backend_pid)`` is called once the lock is taken (the fence)."""
        self.url = url
        self._on_active = on_active
        self.cluster = cluster
        self.key = lease_key(cluster)
        self.shard = cluster.label or "0/1"
        self.poll_s = poll_s
        self.state = "starting"  # then "standby" (another holds it), "active", "lost"
        self.backend_pid: int | None = None  # the holding connection's, for the fence
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for the lock; ``False`` when ``stop`` was set first."""
        waiting_logged = False
        while not stop.is_set():
            try:
                if await self._try():
                    self.state = "active"
                    log.info("engine_shard_active", shard=self.shard)
                    return True
            except psycopg.Error as error:
                await self._drop()
                log.warning(
                    "engine_shard_lease_unreachable",
                    shard=self.shard,
                    journal=redact(self.url),
                    error=str(error).strip().splitlines()[0] if str(error).strip() else "",
                )
            self.state = "standby"
            if not waiting_logged:
                log.info(
                    "engine_shard_standby",
                    shard=self.shard,
                    hint="another process runs this shard; this one takes over when it stops",
                )
                waiting_logged = True
            try:
                async with asyncio.timeout(self.poll_s):
                    await stop.wait()
            except TimeoutError:
                pass
        return False

    async def _try(self) -> bool:
        if self._connection is None:
            self._connection = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        cursor = await self._connection.execute("SELECT pg_try_advisory_lock(%s, %s)", self.key)
        row = await cursor.fetchone()
        if row is not None and row[0]:
            self.backend_pid = self._connection.info.backend_pid
            if self._on_active is not None:
                self._on_active(self.key, self.backend_pid)
            return True
        return False

    async def hold(self) -> None:
        """Check the lock's connection every :data:`POLL_S`; raise when it is gone.

        Run as a vital task: the process stops, since another may run the shard now.
        """
        while True:
            await asyncio.sleep(self.poll_s)
            connection = self._connection
            try:
                if connection is None:
                    raise psycopg.OperationalError("no connection")
                await connection.execute("SELECT 1")
            except psycopg.Error as error:
                self.state = "lost"
                raise JournalError(
                    redact(self.url),
                    f"engine shard {self.shard}: the lock's connection is lost "
                    f"({error}); stopping, as a standby may run the shard now",
                ) from None

    async def _drop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def close(self) -> None:
        """Give the lock up (closing its connection): a standby takes it at once."""
        await self._drop()
        if self.state == "active":
            self.state = "released"
