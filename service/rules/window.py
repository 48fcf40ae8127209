"""Windows of ticks and OHLCV bars, updated in amortised O(1) per tick.

A rule compares a tick with what came *before* it: the window of span S a
tick at time t sees holds the earlier ticks with ``t - S <= ts < t`` (polars'
``rolling_*_by(..., closed="left")``, which the tests use as the oracle).
Ticks at the tick's own instant are not in it: one instant's ticks are not
compared with each other. Minimum and maximum come from monotonic deques;
VWAP from running sums that are summed again exactly (``math.fsum``) each
time sixteen windows' worth of ticks have left, or a large print leaving
has cancelled most of them, so rounding cannot build up over a session.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

_NAN = math.nan
_NEVER = -(2**63)
# The running sums are summed again exactly once this many windows' worth of ticks have
# left: rounding stays within a few thousand operations' worth, at a small cost per tick.
_RESUM_EVERY = 16
# ...and at once when what is left is a thousandth of the largest sum since: subtracting a
# large print from a sum leaves its rounding error on the small rest.
_CANCEL = 1e-3


class Value:
    """An indicator's current value, read by the rules that compare with it (NaN: not ready)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = _NAN


class TickWindow:
    """The ticks of the last ``span_ns`` before each tick: their high, low and VWAP.

    :meth:`push` a tick before the rules see it: the values then describe the
    window before it, and the tick joins the window for the ticks after it.
    Call it with non-decreasing times; the engine guarantees that.
    """

    __slots__ = (
        "_entries",
        "_highs",
        "_lows",
        "_peak",
        "_pending",
        "_pending_ts",
        "_pv",
        "_removed",
        "_volume",
        "high",
        "label",
        "low",
        "need_extremes",
        "span_ns",
        "vwap",
    )

    def __init__(self, span_ns: int, label: str) -> None:
        if span_ns <= 0:
            raise ValueError(f"window span must be positive, got {span_ns} ns")
        self.span_ns = span_ns
        self.label = label
        self._entries: deque[tuple[int, float, float]] = deque()
        # Monotonic deques of (ts_ns, price): lows increasing, highs decreasing.
        self._lows: deque[tuple[int, float, float]] = deque()
        self._highs: deque[tuple[int, float, float]] = deque()
        # Ticks of the latest instant: they join the window when a later instant comes.
        self._pending: list[tuple[int, float, float]] = []
        self._pending_ts = _NEVER
        self._pv = 0.0
        self._volume = 0.0
        self._removed = 0  # ticks that left since the sums were last summed exactly
        self._peak = 0.0  # the largest price-volume sum since then
        self.high = Value()
        self.low = Value()
        self.vwap = Value()
        # The monotonic deques cost most: kept only while a rule reads the high or low.
        self.need_extremes = True

    def push(self, ts_ns: int, price: float, volume: float) -> None:
        """Set the values to those of the window before ``ts_ns``; then hold this tick too.

        The hot path of every windowed symbol: written out in one method.
        """
        if ts_ns != self._pending_ts:
            pending = self._pending
            if len(pending) == 1:  # the common case: one tick per instant, written out
                entry = pending[0]
                price_then, volume_then = entry[1], entry[2]
                self._entries.append(entry)
                self._pv += price_then * volume_then
                self._volume += volume_then
                if self._pv > self._peak:
                    self._peak = self._pv
                if self.need_extremes:
                    lows = self._lows
                    while lows and lows[-1][1] >= price_then:
                        lows.pop()
                    lows.append(entry)
                    highs = self._highs
                    while highs and highs[-1][1] <= price_then:
                        highs.pop()
                    highs.append(entry)
                self._pending = []
            elif pending:
                self._flush()
            self._pending_ts = ts_ns
        cutoff_ns = ts_ns - self.span_ns
        entries = self._entries
        if entries and entries[0][0] < cutoff_ns:
            extremes = self.need_extremes
            lows = self._lows
            highs = self._highs
            while entries and entries[0][0] < cutoff_ns:
                entry = entries.popleft()
                self._pv -= entry[1] * entry[2]
                self._volume -= entry[2]
                self._removed += 1
                if extremes:
                    if lows[0] is entry:
                        lows.popleft()
                    if highs[0] is entry:
                        highs.popleft()
            if self._removed >= _RESUM_EVERY * len(entries) or self._pv < self._peak * _CANCEL:
                self._resum()
        self._show()
        self._pending.append((ts_ns, price, volume))

    def _flush(self) -> None:
        entries = self._entries
        lows = self._lows
        highs = self._highs
        extremes = self.need_extremes
        for entry in self._pending:
            _, price, volume = entry
            entries.append(entry)
            self._pv += price * volume
            self._volume += volume
            if self._pv > self._peak:
                self._peak = self._pv
            if extremes:
                while lows and lows[-1][1] >= price:
                    lows.pop()
                lows.append(entry)
                while highs and highs[-1][1] <= price:
                    highs.pop()
                highs.append(entry)
        self._pending = []

    def _resum(self) -> None:
        entries = self._entries
        self._pv = math.fsum(price * volume for _, price, volume in entries)
        self._volume = math.fsum(volume for _, _, volume in entries)
        self._removed = 0
        self._peak = self._pv

    def _show(self) -> None:
        if self._entries:
            if self.need_extremes:
                self.low.value = self._lows[0][1]
                self.high.value = self._highs[0][1]
            volume = self._volume
            self.vwap.value = self._pv / volume if volume > 0 else _NAN
        else:
            self.low.value = self.high.value = self.vwap.value = _NAN

    def state(self) -> list[Any]:
        """What it keeps, for a checkpoint: its ticks, those of the latest instant, its sums.

        The running sums are kept as they are (not summed again on restore), so
        a restored window gives the very same VWAP, to the last bit.
        """
        return [
            [list(entry) for entry in self._entries],
            [list(entry) for entry in self._pending],
            None if self._pending_ts == _NEVER else self._pending_ts,
            [self._pv, self._volume, self._removed, self._peak],
        ]

    def restore(self, state: list[Any] | None) -> None:
        """Take back what :meth:`state` gave."""
        if state is None:
            return
        entries, pending, pending_ts, sums = state
        self._entries.clear()
        self._lows.clear()
        self._highs.clear()
        self._pending = [(int(ts), price, volume) for ts, price, volume in entries]
        self._flush()
        self._pv, self._volume, self._removed = sums[0], sums[1], int(sums[2])
        self._peak = sums[3] if len(sums) > 3 else self._pv
        self._pending = [(int(ts), price, volume) for ts, price, volume in pending]
        self._pending_ts = _NEVER if pending_ts is None else int(pending_ts)
        self._show()


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

    A bar closes when a tick of a later bar arrives (:meth:`push` says so)
    or when time passes its end (:meth:`close_by`: the engine's watermark).
    Intervals with no ticks produce no bar. A tick older than the end of a
    bar already closed is *late*: bars are final, so it is not added to any
    (:meth:`push` counts it in :attr:`late`).
    """

    __slots__ = (
        "_close",
        "_high",
        "_low",
        "_open",
        "_start_ns",
        "_ticks",
        "_volume",
        "closed",
        "end_ns",
        "interval_ns",
        "label",
        "late",
    )

    def __init__(self, interval_ns: int, label: str) -> None:
        if interval_ns <= 0:
            raise ValueError(f"bar interval must be positive, got {interval_ns} ns")
        self.interval_ns = interval_ns
        self.label = label
        self._start_ns = 0
        self.end_ns = 0  # no bar yet: the first tick always starts one
        self.closed: Bar | None = None  # the bar the last tick that opened one closed
        self._open = self._high = self._low = self._close = 0.0
        self._volume = 0.0
        self._ticks = 0
        self.late = 0

    @property
    def open_end_ns(self) -> int | None:
        """The end of the bar in progress (``None``: none is)."""
        return self.end_ns if self._ticks else None

    @property
    def volume(self) -> float:
        """The volume of the bar in progress (0 when none is)."""
        return self._volume if self._ticks else 0.0

    def push(self, ts_ns: int, price: float, volume: float) -> bool:
        """Add a tick; ``True`` when it opened a new bar (:attr:`closed` is the one it closed)."""
        if ts_ns < self.end_ns:
            if not self._ticks:
                self.late += 1  # its bar was closed by the watermark
                return False
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += volume
            self._ticks += 1
            return False
        self.closed = self.current()
        self._start_ns = ts_ns - ts_ns % self.interval_ns
        self.end_ns = self._start_ns + self.interval_ns
        self._open = self._high = self._low = self._close = price
        self._volume = volume
        self._ticks = 1
        return True

    def close_by(self, watermark_ns: int) -> Bar | None:
        """The bar in progress, closed, if ``watermark_ns`` has reached its end."""
        if not self._ticks or watermark_ns < self.end_ns:
            return None
        closed = self.current()
        self._ticks = 0
        self._volume = 0.0
        return closed

    def state(self) -> list[float] | None:
        """The bar in progress, for a checkpoint (``None`` before the first tick)."""
        if self.end_ns == 0:
            return None
        return [
            self._start_ns,
            self.end_ns,
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
        self._start_ns, self.end_ns, self._ticks = int(start), int(end), int(ticks)

    def current(self) -> Bar | None:
        """The bar still being built, or ``None`` when none is."""
        if self._ticks == 0:
            return None
        return Bar(
            interval=self.label,
            start_ns=self._start_ns,
            end_ns=self.end_ns,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
            ticks=self._ticks,
        )
