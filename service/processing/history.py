"""Chart history: per symbol, the recent OHLCV bars of a few intervals, bounded in count.

Fed by the engine task with every accepted tick (a stage after the engine),
read by ``/api/v1/history``, so a dashboard opened mid-session draws the
session so far. Each interval keeps the bars of its ``keep`` span, the bar in
progress included; older ones fall off. It is held in memory: a restart
starts it over (alerts, in the journal, are kept).

Bars are epoch-aligned, as the engine's are: an interval with no tick has no bar.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from service.config_table import Table, show_value
from service.models import Tick
from service.processing.batch import Batch
from service.timestamps import NS_PER_SECOND, parse_duration

# Bars at most per symbol and interval, whatever keep says: a bound on memory (a day of
# 1 s bars is 86,400; a bar takes about 100 bytes).
MAX_BARS = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryConfig:
    """``[history]``: for each bar interval, how long its bars are kept (``{}``: no history)."""

    bars: Mapping[str, str] = field(default_factory=lambda: {"1s": "1h", "1m": "3d"})


class BarPayload(TypedDict):
    """One bar as ``/api/v1/history`` gives it: ``time`` is its start, in epoch seconds."""

    time: float
    open: float
    high: float
    low: float
    close: float
    volume: float


class _Series:
    """One symbol's bars of one interval: closed ones as tuples, the one in progress as a list.

    Plain tuples and lists: building a bar object for every bar closed costs
    more than the rest of a tick's work here.
    """

    __slots__ = ("bars", "current", "end_ns", "interval_ns")

    def __init__(self, interval_ns: int, count: int) -> None:
        self.interval_ns = interval_ns
        # (start_ns, open, high, low, close, volume), oldest first.
        self.bars: deque[tuple[int, float, float, float, float, float]] = deque(maxlen=count)
        self.current: list[Any] | None = None
        self.end_ns = 0

    def push(self, ts_ns: int, price: float, volume: float) -> None:
        """A tick (in time order: the engine accepted it) into its bar."""
        bar = self.current
        if bar is not None and ts_ns < self.end_ns:
            if price > bar[2]:
                bar[2] = price
            elif price < bar[3]:
                bar[3] = price
            bar[4] = price
            bar[5] += volume
            return
        if bar is not None:
            self.bars.append((bar[0], bar[1], bar[2], bar[3], bar[4], bar[5]))
        start_ns = ts_ns - ts_ns % self.interval_ns
        self.end_ns = start_ns + self.interval_ns
        self.current = [start_ns, price, price, price, price, volume]


class ChartHistory:
    """The bars of every symbol that ticked, in each configured interval."""

    def __init__(self, config: HistoryConfig) -> None:
        self.intervals: dict[str, tuple[int, int]] = {}  # label -> (interval ns, bars kept)
        for label, keep in config.bars.items():
            interval_ns = parse_duration(label)
            count = min(MAX_BARS, max(1, parse_duration(keep) // interval_ns))
            self.intervals[label] = (interval_ns, count)
        self._symbols: dict[str, list[_Series]] = {}
        self._by_label: dict[str, dict[str, _Series]] = {label: {} for label in self.intervals}

    def __call__(self, batch: Batch) -> Batch:
        """The stage: the batch's accepted ticks into their symbols' bars."""
        if batch.ticks and self.intervals:
            self.observe(batch.ticks)
        return batch

    def observe(self, ticks: Sequence[Tick]) -> None:
        symbols = self._symbols
        for tick in ticks:
            series = symbols.get(tick.symbol)
            if series is None:
                series = symbols[tick.symbol] = self._open(tick.symbol)
            ts_ns, price, volume = tick.ts_ns, tick.price, tick.volume or 0.0
            for one in series:
                one.push(ts_ns, price, volume)

    def _open(self, symbol: str) -> list[_Series]:
        made = []
        for label, (interval_ns, count) in self.intervals.items():
            series = _Series(interval_ns, count)
            self._by_label[label][symbol] = series
            made.append(series)
        return made

    def bars(self, symbol: str, interval: str, since_ns: int | None = None) -> list[BarPayload]:
        """The bars of ``symbol`` in ``interval`` (one of :attr:`intervals`), oldest first.

        Those that end after ``since_ns`` when given; the bar in progress last.
        """
        series = self._by_label[interval].get(symbol)
        if series is None:
            return []
        found = list(series.bars)
        if series.current is not None:
            found.append(tuple(series.current))
        if since_ns is not None:
            found = [bar for bar in found if bar[0] + series.interval_ns > since_ns]
        return [
            {
                "time": start_ns / NS_PER_SECOND,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
            for start_ns, open_, high, low, close, volume in found
        ]


def read_history(table: Table) -> HistoryConfig:
    """``[history] bars = {"1s" = "1h", "1m" = "3d"}``: each interval and how long it is kept."""
    table.reads(HistoryConfig)
    bars = table.convert("bars", _bars)
    table.finish()
    return HistoryConfig(bars=bars) if table.ok else HistoryConfig()


def _bars(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(
            f'expected a table of interval = kept, such as {{"1m" = "3d"}}, got {show_value(value)}'
        )
    bars: dict[str, str] = {}
    for interval, keep in value.items():
        try:
            interval_ns = parse_duration(interval)
        except ValueError as error:
            raise ValueError(f"{interval}: {error}") from None
        if not isinstance(keep, str):
            raise ValueError(f'{interval}: expected how long to keep, such as "3d"')
        try:
            keep_ns = parse_duration(keep)
        except ValueError as error:
            raise ValueError(f"{interval}: {error}") from None
        if keep_ns < interval_ns:
            raise ValueError(f"{interval}: keep {keep} is shorter than one bar")
        if keep_ns // interval_ns > MAX_BARS:
            raise ValueError(
                f"{interval}: {keep} is {keep_ns // interval_ns:,} bars; at most {MAX_BARS:,} "
                "are kept per symbol (a longer interval keeps longer)"
            )
        bars[interval] = keep
    return bars
