"""The bounded queue between the tick sources and the engine.

Every source awaits :meth:`TickQueue.put`; when the engine falls behind and
the queue is full, that await is the backpressure: a websocket reader stops
reading its socket, an MQTT reader stops acknowledging, and nothing grows
without bound. The queue also measures the lag: how long each batch's oldest
tick waited between a source putting it and the engine taking it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from service.clock import SYSTEM_CLOCK, Clock
from service.models import Receipt, Tick


class TickSink(Protocol):
    """Where a source puts its ticks: the queue, or a wrapper around it."""

    async def put(self, tick: Tick, source: str = "", receipt: int | None = None) -> None: ...

    async def put_receipt(self, source: str, receipt: int) -> None: ...


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Ticks taken from the queue together, each with the name of the source that put it.

    ``receipts`` are those of the ticks that came with one, in order.
    """

    ticks: Sequence[Tick]
    sources: Sequence[str]
    enqueued: float  # when the oldest of them was put (monotonic)
    receipts: Sequence[Receipt] = ()
    items: int = -1  # taken from the queue: the ticks, and receipts alone (-1: the ticks)

    @property
    def taken(self) -> int:
        """How many items this batch took from the queue (for ``task_done``)."""
        return len(self.ticks) if self.items < 0 else self.items


class TickQueue:
    """A bounded FIFO of ticks that records waits (backpressure) and lag."""

    def __init__(self, maxsize: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if maxsize < 1:
            raise ValueError(f"a tick queue needs room for at least one tick, got {maxsize}")
        self.maxsize = maxsize
        self._monotonic = clock.monotonic
        self._queue: asyncio.Queue[tuple[float, str, Tick | None, int | None]] = asyncio.Queue(
            maxsize
        )
        self.put_count = 0
        self.full_waits = 0  # puts that found the queue full and had to wait
        self.lag_s = 0.0  # how long the last batch's oldest tick waited
        self.max_lag_s = 0.0  # the longest such wait since take_max_lag()
        self.batch_enqueued = 0.0  # when the last batch's oldest tick was put (monotonic)
        self.closed = False

    def close(self) -> None:
        """Take nothing more: a source's next put waits until it is cancelled.

        Stopping closes the queue first, so the sources stay connected while the
        engine commits what is queued and acknowledges it, and only then go.
        """
        self.closed = True

    async def put(self, tick: Tick, source: str = "", receipt: int | None = None) -> None:
        """Enqueue ``tick`` from ``source`` (its name), waiting while the queue is full.

        ``receipt`` comes back to the source (see :data:`Receipt`) once a commit
        covers the tick.
        """
        await self._put(tick, source, receipt)
        self.put_count += 1

    async def put_receipt(self, source: str, receipt: int) -> None:
        """A receipt with no tick (a message sent again): settled with the ticks put before it."""
        await self._put(None, source, receipt)

    async def _put(self, tick: Tick | None, source: str, receipt: int | None) -> None:
        if self.closed:
            await asyncio.get_running_loop().create_future()  # ends when cancelled
        if self._queue.full():
            self.full_waits += 1
        await self._queue.put((self._monotonic(), source, tick, receipt))

    async def get_batch(self, limit: int) -> TickBatch:
        """Wait for a tick, then take it and up to ``limit - 1`` more that are ready."""
        enqueued, source, first, receipt = await self._queue.get()
        ticks: list[Tick] = []
        sources: list[str] = []
        receipts: list[Receipt] = []
        taken = 1
        if first is not None:
            ticks.append(first)
            sources.append(source)
        if receipt is not None:
            receipts.append((source, receipt))
        while taken < limit and not self._queue.empty():
            _, source, tick, receipt = self._queue.get_nowait()
            taken += 1
            if tick is not None:
                ticks.append(tick)
                sources.append(source)
            if receipt is not None:
                receipts.append((source, receipt))
        self.batch_enqueued = enqueued
        self.lag_s = self._monotonic() - enqueued
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        return TickBatch(ticks, sources, enqueued, receipts, taken)

    def task_done(self, count: int) -> None:
        """Mark ``count`` taken ticks as processed (for :meth:`join`)."""
        for _ in range(count):
            self._queue.task_done()

    async def join(self) -> None:
        """Wait until every tick put has been processed."""
        await self._queue.join()

    def qsize(self) -> int:
        return self._queue.qsize()

    def take_max_lag(self) -> float:
        """The longest lag since the last call, in seconds; resets it."""
        lag, self.max_lag_s = self.max_lag_s, 0.0
        return lag
