"""Clocks for tests: one that only moves when told (:class:`FakeClock`), one whose wall clock
is the test's (:class:`WallClock`)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

from service.clock import SystemClock
from tests.builders import T0_NS


class FakeClock:
    """Time that passes only in :meth:`advance`: sleepers and waiters wake when theirs comes.

    A test advances to the next due time and asserts what happened, instead of
    sleeping and hoping nothing more would have.
    """

    def __init__(self, start_ns: int = T0_NS) -> None:
        self._now_ns = start_ns
        self._start_ns = start_ns
        self._timers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._unresumed = 0  # timers that fired whose waiter has not run since

    def now_ns(self) -> int:
        return self._now_ns

    def monotonic(self) -> float:
        return (self._now_ns - self._start_ns) / 1e9  # from the start: float keeps its ns

    async def sleep(self, seconds: float) -> None:
        await self._timer(seconds)
        self._unresumed -= 1

    async def wait(self, event: asyncio.Event, within: float | None) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        timers = [] if within is None else [self._timer(within)]
        try:
            await asyncio.wait([waiter, *timers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            for timer in timers:
                if timer.done():
                    self._unresumed -= 1
                else:
                    timer.cancel()
        return event.is_set()

    @property
    def settled(self) -> bool:
        """Whether every timer that fired has had its waiter run since."""
        return self._unresumed == 0

    def next_due_s(self) -> float | None:
        """Seconds until the next timer is due (``None``: none waits)."""
        pending = [due for due, _, future in self._timers if not future.done()]
        return None if not pending else max(0.0, (min(pending) - self._now_ns) / 1e9)

    def advance(self, seconds: float) -> None:
        """Move time ``seconds`` on and wake every timer due by then."""
        self._now_ns += round(seconds * 1e9)
        while self._timers and self._timers[0][0] <= self._now_ns:
            _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)
                self._unresumed += 1

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self._now_ns + max(0, round(seconds * 1e9))
        heapq.heappush(self._timers, (due, next(self._order), future))
        if due <= self._now_ns:
            self.advance(0)
        return future


class WallClock(SystemClock):
    """The system's timers, with the test's idea of the wall clock (``now_ns``)."""

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self._now = now_ns

    def now_ns(self) -> int:
        return self._now()
