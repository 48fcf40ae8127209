"""Simulator source: random-walk ticks around given prices, for demos and load tests.

:class:`RandomWalk` is the pure part: given a time it returns the next tick,
so a seed makes a run repeatable. Each step moves the price by a normal draw
of ``volatility`` times the reference price, with a slight pull back towards
the reference, so the walk wanders across nearby levels without drifting
away over a long demo. Prices are rounded to the cent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import structlog

from service.models import Tick
from service.streams.queue import TickSink
from service.streams.settings import SimulatorSourceConfig
from service.streams.source import SourceSnapshot

# The pull back towards the reference price per step (a fraction of the gap).
MEAN_REVERSION = 0.001
# Ticks due are sent in bursts of at most this many between yields to the loop.
MAX_BURST = 1_000
# The shortest sleep between bursts: one timer per tick would cost more than the ticks.
MIN_SLEEP_S = 0.005

log = structlog.get_logger("service.streams.simulator")


class RandomWalk:
    """The next simulated tick of each symbol in turn."""

    def __init__(
        self,
        prices: Sequence[tuple[str, float]],
        *,
        volatility: float,
        seed: int | None = None,
    ) -> None:
        if not prices:
            raise ValueError("a random walk needs at least one symbol and price")
        self.reference = dict(prices)
        self.current = dict(prices)
        self.volatility = volatility
        self._symbols = [symbol for symbol, _ in prices]
        self._next = 0
        self._random = random.Random(seed)  # noqa: S311 - simulated prices, not security

    def step(self, ts_ns: int) -> Tick:
        """Move the next symbol one step and return its tick at ``ts_ns``."""
        symbol = self._symbols[self._next]
        self._next = (self._next + 1) % len(self._symbols)
        reference = self.reference[symbol]
        price = self.current[symbol]
        price += MEAN_REVERSION * (reference - price)
        price += self._random.gauss(0.0, self.volatility * reference)
        # Never at or below zero, whatever the draw: a price is positive.
        price = max(round(price, 2), 0.01)
        self.current[symbol] = price
        volume = float(self._random.randint(1, 50) * 100)
        return Tick(symbol=symbol, price=price, ts_ns=ts_ns, volume=volume)


class SimulatorSource:
    """A ``[[sources]] kind = "simulator"``: a random walk at ``rate`` ticks/s per symbol."""

    def __init__(self, config: SimulatorSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self.description = config.describe()
        self.walk = RandomWalk(config.prices, volatility=config.volatility, seed=config.seed)
        self.accepted = 0

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(name=self.name, state="running", accepted=self.accepted)

    async def run(self, queue: TickSink) -> None:
        """Put ticks into ``queue`` at the configured rate until cancelled.

        Ticks carry the wall-clock time at which they are made. When the queue
        is full the simulator waits, and skips the ticks it fell behind on,
        rather than sending a burst of stale ones.
        """
        rate = self.config.rate * len(self.config.prices)
        log.info("simulator_started", source=self.name, ticks_per_s=rate)
        loop = asyncio.get_running_loop()
        start = loop.time()
        due_before = 0
        while True:
            due = int((loop.time() - start) * rate)
            owed = due - due_before
            if owed > MAX_BURST:
                # Fell behind (a full queue, a stalled loop): catch up, not replay the past.
                due_before = due - MAX_BURST
                owed = MAX_BURST
            for _ in range(owed):
                await queue.put(self.walk.step(time.time_ns()), self.name)
                self.accepted += 1
            due_before += owed
            next_due = start + (due_before + 1) / rate
            await asyncio.sleep(max(next_due - loop.time(), MIN_SLEEP_S))
