"""Time, as the service's timers see it: one small interface, injected where time is read.

The engine never reads a clock (a tick's time is the time). Everything around
it that waits or stamps (the tick queue's lag, the delivery workers' retries,
the article directory's polls, the stale-feed timer) takes a :class:`Clock`,
so that a test can move time forward instead of sleeping through it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Wall-clock time, in nanoseconds since the epoch (stamps, due times)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...

    async def wait(self, event: asyncio.Event, within: float | None) -> bool:
        """Wait until ``event`` is set (``True``) or ``within`` seconds pass (``False``)."""
        ...


class SystemClock:
    """The machine's clocks and asyncio's timers."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, within: float | None) -> bool:
        try:
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            return False
        return True


SYSTEM_CLOCK = SystemClock()
