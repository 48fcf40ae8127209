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
from service.models import Tick


class TickSink(Protocol):
    """Where a source puts its ticks: the queue, or a wrapper around it."""

    async def put(self, tick: Tick, source: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Ticks taken from the queue together, each with the name of the source that put it."""

    ticks: Sequence[Tick]
    sources: Sequence[str]
    enqueued: float  # when the oldest of them was put (monotonic)


class TickQueue:
    """A bounded FIFO of ticks that records waits (backpressure) and lag."""

    def __init__(self, maxsize: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if maxsize < 1:
            raise ValueError(f"a tick queue needs room for at least one tick, got {maxsize}")
        self.maxsize = maxsize
        self._monotonic = clock.monotonic
        self._queue: asyncio.Queue[tuple[float, str, Tick]] = asyncio.Queue(maxsize)
        self.put_count = 0
        self.full_waits = 0  # puts that found the queue full and had to wait
        self.lag_s = 0.0  # how long the last batch's oldest tick waited
        self.max_lag_s = 0.0  # the longest such wait since take_max_lag()
        self.batch_enqueued = 0.0  # when the last batch's oldest tick was put (monotonic)

    async def put(self, tick: Tick, source: str = "") -> None:
        """Enqueue ``tick`` from ``source`` (its name), waiting while the queue is full."""
        item = (self._monotonic(), source, tick)
        if self._queue.full():
            self.full_waits += 1
        await self._queue.put(item)
        self.put_count += 1

    async def get_batch(self, limit: int) -> TickBatch:
        """Wait for a tick, then take it and up to ``limit - 1`` more that are ready."""
        enqueued, source, first = await self._queue.get()
        ticks = [first]
        sources = [source]
        while len(ticks) < limit and not self._queue.empty():
            _, source, tick = self._queue.get_nowait()
            ticks.append(tick)
            sources.append(source)
        self.batch_enqueued = enqueued
        self.lag_s = self._monotonic() - enqueued
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        return TickBatch(ticks, sources, enqueued)

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
