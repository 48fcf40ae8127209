"""When a market is open: the hours rules with a ``session`` and the stale watch count.

Pure and clock-free: :class:`Hours` is a sorted list of ``[open, close)``
intervals in nanoseconds, built once from an exchange calendar (see
:mod:`service.markets`), and answers "is it open at t" and "how long was it
open between a and b". A market has regular hours and extended hours (regular
plus pre- and after-market); a 24/7 market (crypto) is always open.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

_BEFORE = -(2**63)
_AFTER = 2**63 - 1


class Hours:
    """Sorted, disjoint ``[open, close)`` intervals; an instant outside all of them is closed."""

    __slots__ = ("_always", "_closes", "_cumulative", "_opens", "_span")

    def __init__(self, intervals: Sequence[tuple[int, int]] = (), *, always: bool = False) -> None:
        self._always = always
        ordered = sorted(intervals)
        for (_, close), (next_open, _) in itertools.pairwise(ordered):
            if next_open < close:
                raise ValueError("market hours overlap: each session must end before the next")
        self._opens = [open_ns for open_ns, _ in ordered]
        self._closes = [close_ns for _, close_ns in ordered]
        # Open time before each interval, so open_time() is two look-ups.
        self._cumulative = [0, *itertools.accumulate(c - o for o, c in ordered)]
        # The interval (or the gap) of the last look-up: consecutive ticks are in the same one.
        self._span = (0, 0, False)

    @classmethod
    def always_open(cls) -> Hours:
        return cls(always=True)

    @property
    def always(self) -> bool:
        return self._always

    def contains(self, ts_ns: int) -> bool:
        """Whether the market is open at ``ts_ns``."""
        start, end, is_open = self._span
        if start <= ts_ns < end:
            return is_open
        if self._always:
            return True
        index = bisect.bisect_right(self._opens, ts_ns) - 1
        if index >= 0 and ts_ns < self._closes[index]:
            self._span = (self._opens[index], self._closes[index], True)
            return True
        gap_start = self._closes[index] if index >= 0 else _BEFORE
        gap_end = self._opens[index + 1] if index + 1 < len(self._opens) else _AFTER
        self._span = (gap_start, gap_end, False)
        return False

    def open_time(self, start_ns: int, end_ns: int) -> int:
        """Nanoseconds of ``[start_ns, end_ns)`` during which the market is open."""
        if end_ns <= start_ns:
            return 0
        if self._always:
            return end_ns - start_ns
        return self._open_before(end_ns) - self._open_before(start_ns)

    def _open_before(self, ts_ns: int) -> int:
        index = bisect.bisect_right(self._opens, ts_ns) - 1
        if index < 0:
            return 0
        return self._cumulative[index] + min(ts_ns, self._closes[index]) - self._opens[index]


@dataclass(frozen=True, slots=True)
class Market:
    """One calendar's hours: ``regular``, and ``extended`` (regular plus pre- and after-market)."""

    name: str
    regular: Hours
    extended: Hours

    @classmethod
    def always_open(cls, name: str = "24/7") -> Market:
        hours = Hours.always_open()
        return cls(name, hours, hours)

    def hours(self, session: str) -> Hours | None:
        """The hours of ``session`` ("regular", "extended"); ``None`` for "any"."""
        if session == "regular":
            return self.regular
        if session == "extended":
            return self.extended
        return None
