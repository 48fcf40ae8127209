"""Rolling windows over time and OHLCV bars, updated in amortised O(1) per tick.

A window of span S at time t covers the ticks with ``t - S < ts <= t`` (the
same as polars' ``rolling_*_by(..., closed="right")``, which the tests use as
the oracle). Minimum and maximum come from monotonic deques; mean, VWAP and
volume from compensated running sums.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowStats:
    """What a rolling window holds at the time of its latest tick.

    ``vwap`` is ``None`` while the window holds no volume.
    """

    span: str
    count: int
    low: float
    high: float
    mean: float
    vwap: float | None
    volume: float


class RollingWindow:
    """Rolling statistics over the last ``span_ns`` nanoseconds of ticks.

    Call :meth:`push` with non-decreasing times; the engine guarantees that.

    The sums are compensated (Neumaier): a plain running sum that drops one
    large print (3356 x 10,000 shares) keeps only a few digits of what is left,
    and drifts over a long session.
    """

    __slots__ = (
        "_entries",
        "_highs",
        "_lows",
        "_price",
        "_price_c",
        "_pv",
        "_pv_c",
        "_volume",
        "_volume_c",
        "label",
        "span_ns",
    )

    def __init__(self, span_ns: int, label: str) -> None:
        if span_ns <= 0:
            raise ValueError(f"window span must be positive, got {span_ns} ns")
        self.span_ns = span_ns
        self.label = label
        self._entries: deque[tuple[int, float, float]] = deque()
        # Monotonic deques of (ts_ns, price): lows increasing, highs decreasing.
        self._lows: deque[tuple[int, float]] = deque()
        self._highs: deque[tuple[int, float]] = deque()
        # Running sums (all terms >= 0) and their compensations (_c).
        self._price = self._price_c = 0.0
        self._pv = self._pv_c = 0.0
        self._volume = self._volume_c = 0.0

    def push(self, ts_ns: int, price: float, volume: float) -> None:
        self._entries.append((ts_ns, price, volume))
        self._price, self._price_c = _add(self._price, self._price_c, price)
        self._pv, self._pv_c = _add(self._pv, self._pv_c, price * volume)
        self._volume, self._volume_c = _add(self._volume, self._volume_c, volume)
        lows = self._lows
        while lows and lows[-1][1] >= price:
            lows.pop()
        lows.append((ts_ns, price))
        highs = self._highs
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append((ts_ns, price))
        cutoff_ns = ts_ns - self.span_ns
        # The tick just pushed is always inside the window, so these loops stop.
        entries = self._entries
        while entries[0][0] <= cutoff_ns:
            self._remove(*entries.popleft())
        while lows[0][0] <= cutoff_ns:
            lows.popleft()
        while highs[0][0] <= cutoff_ns:
            highs.popleft()

    def _remove(self, _ts_ns: int, price: float, volume: float) -> None:
        self._price, self._price_c = _add(self._price, self._price_c, -price)
        self._pv, self._pv_c = _add(self._pv, self._pv_c, -price * volume)
        self._volume, self._volume_c = _add(self._volume, self._volume_c, -volume)

    def stats(self) -> WindowStats | None:
        """The statistics as of the latest tick, or ``None`` before the first one."""
        count = len(self._entries)
        if count == 0:
            return None
        volume = self._volume + self._volume_c
        return WindowStats(
            span=self.label,
            count=count,
            low=self._lows[0][1],
            high=self._highs[0][1],
            mean=(self._price + self._price_c) / count,
            vwap=(self._pv + self._pv_c) / volume if volume > 0 else None,
            volume=volume,
        )


def _add(total: float, compensation: float, value: float) -> tuple[float, float]:
    """One step of Neumaier's compensated sum: the new sum and compensation."""
    new = total + value
    if abs(total) >= abs(value):
        return new, compensation + ((total - new) + value)
    return new, compensation + ((value - new) + total)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One OHLCV bar covering ``start_ns <= ts < end_ns``."""

    interval: str
    start_ns: int
    end_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    ticks: int


class BarBuilder:
    """Builds epoch-aligned OHLCV bars of one interval from ticks.

    A bar is known to be closed only when a tick of a later bar arrives, so
    :meth:`push` returns the bar that tick closed. Intervals with no ticks
    produce no bar.
    """

    __slots__ = (
        "_close",
        "_end_ns",
        "_high",
        "_low",
        "_open",
        "_start_ns",
        "_ticks",
        "_volume",
        "interval_ns",
        "label",
    )

    def __init__(self, interval_ns: int, label: str) -> None:
        if interval_ns <= 0:
            raise ValueError(f"bar interval must be positive, got {interval_ns} ns")
        self.interval_ns = interval_ns
        self.label = label
        self._start_ns = 0
        self._end_ns = 0  # no bar open yet: the first tick always starts one
        self._open = self._high = self._low = self._close = 0.0
        self._volume = 0.0
        self._ticks = 0

    def push(self, ts_ns: int, price: float, volume: float) -> Bar | None:
        if ts_ns < self._end_ns:
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += volume
            self._ticks += 1
            return None
        closed = self.current()
        self._start_ns = ts_ns - ts_ns % self.interval_ns
        self._end_ns = self._start_ns + self.interval_ns
        self._open = self._high = self._low = self._close = price
        self._volume = volume
        self._ticks = 1
        return closed

    def state(self) -> list[float] | None:
        """The bar in progress, for a checkpoint (``None`` before the first tick)."""
        if self._ticks == 0:
            return None
        return [
            self._start_ns,
            self._end_ns,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self._ticks,
        ]

    def restore(self, state: list[float] | None) -> None:
        """Take back what :meth:`state` gave."""
        if state is None:
            return
        start, end, self._open, self._high, self._low, self._close, self._volume, ticks = state
        self._start_ns, self._end_ns, self._ticks = int(start), int(end), int(ticks)

    def current(self) -> Bar | None:
        """The bar still being built, or ``None`` before the first tick."""
        if self._ticks == 0:
            return None
        return Bar(
            interval=self.label,
            start_ns=self._start_ns,
            end_ns=self._end_ns,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
            ticks=self._ticks,
        )
