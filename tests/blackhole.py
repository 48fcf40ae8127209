"""A TCP proxy on 127.0.0.1 that can black-hole its connections: a silent network partition.

:meth:`BlackholeProxy.swallow` makes every connection open at that moment
stop carrying bytes either way, without closing: what a dead NAT entry, a
pulled cable or a firewall that drops packets looks like to both ends.
Connections made afterwards pass again, as after the partition heals.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.mosquitto import free_port


class BlackholeProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; :meth:`swallow` silences what is open."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: list[asyncio.Event] = []  # one per connection: set while it carries bytes
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def swallow(self) -> None:
        """From now on, the connections open now carry nothing, and stay open."""
        for flowing in self._open:
            flowing.clear()
        self._open = []

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        flowing = asyncio.Event()
        flowing.set()
        self._open.append(flowing)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, flowing)),
            asyncio.create_task(self._pump(up_reader, writer, flowing)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self._tasks.discard(pump)
            for side in (writer, up_writer):
                side.close()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await flowing.wait()  # swallowed: never again
                writer.write(data)
                await writer.drain()
