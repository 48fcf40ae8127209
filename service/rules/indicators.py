"""Indicators of bars: SMA, EMA, RSI and the average volume, updated once per bar close.

An indicator of bars is computed from the bars closed so far; the bar in
progress is not in it. It is *ready* once it has its ``period`` of bars
(RSI: ``period`` changes, so ``period + 1`` bars); before, its value is NaN
and no rule compares with it. The definitions are those of the polars
expressions the property tests hold them to:

* ``sma(n)``: the mean of the last n closes (``rolling_mean(n)``);
* ``ema(n)``: ``ewm_mean(span=n, adjust=False, min_samples=n)`` of the closes,
  so alpha = 2 / (n + 1), started from the first close;
* ``rsi(n)``: 100 - 100 / (1 + G / L), where G and L are the
  ``ewm_mean(alpha=1/n, adjust=False)`` of the gains and losses between
  consecutive closes (Wilder's smoothing, started from the first change); 100
  when L is 0 and G is not, 50 when both are;
* ``sma_volume(n)``: the mean volume of the last n bars.

Only bars with ticks exist (see :class:`~service.rules.window.BarBuilder`),
so an interval without trades is no bar, as on a trader's chart.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from service.rules.window import Bar, BarBuilder, Value

_NAN = math.nan


class BarIndicator(Value):
    """One indicator of one bar series: :meth:`update` it with each closed bar."""

    __slots__ = ()

    def update(self, bar: Bar) -> None:
        raise NotImplementedError

    def state(self) -> list[Any]:
        raise NotImplementedError

    def restore(self, state: list[Any]) -> None:
        raise NotImplementedError


class SimpleAverage(BarIndicator):
    """The mean close (or volume) of the last ``period`` bars."""

    __slots__ = ("_last", "_of_volume", "period")

    def __init__(self, period: int, *, of_volume: bool = False) -> None:
        super().__init__()
        self.period = period
        self._of_volume = of_volume
        self._last: deque[float] = deque(maxlen=period)

    def update(self, bar: Bar) -> None:
        self._last.append(bar.volume if self._of_volume else bar.close)
        if len(self._last) == self.period:
            # Summed exactly each time: a bar close is rare, rounding never builds up.
            self.value = math.fsum(self._last) / self.period

    def state(self) -> list[Any]:
        return list(self._last)

    def restore(self, state: list[Any]) -> None:
        self._last.clear()
        self._last.extend(state)
        if len(self._last) == self.period:
            self.value = math.fsum(self._last) / self.period


class ExponentialAverage(BarIndicator):
    """The exponential moving average of the closes, alpha = 2 / (period + 1)."""

    __slots__ = ("_alpha", "_count", "_ema", "period")

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        self._alpha = 2.0 / (period + 1)
        self._ema = 0.0
        self._count = 0

    def update(self, bar: Bar) -> None:
        if self._count == 0:
            self._ema = bar.close
        else:
            self._ema = (1.0 - self._alpha) * self._ema + self._alpha * bar.close
        self._count += 1
        if self._count >= self.period:
            self.value = self._ema

    def state(self) -> list[Any]:
        return [self._ema, self._count]

    def restore(self, state: list[Any]) -> None:
        self._ema, self._count = state[0], int(state[1])
        self.value = self._ema if self._count >= self.period else _NAN


class RelativeStrength(BarIndicator):
    """The relative strength index of the closes, with Wilder's smoothing."""

    __slots__ = ("_alpha", "_changes", "_gain", "_last", "_loss", "period")

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        self._alpha = 1.0 / period
        self._last = _NAN
        self._gain = self._loss = 0.0
        self._changes = 0

    def update(self, bar: Bar) -> None:
        last, self._last = self._last, bar.close
        if math.isnan(last):
            return
        change = bar.close - last
        gain, loss = max(change, 0.0), max(-change, 0.0)
        if self._changes == 0:
            self._gain, self._loss = gain, loss
        else:
            keep = 1.0 - self._alpha
            self._gain = keep * self._gain + self._alpha * gain
            self._loss = keep * self._loss + self._alpha * loss
        self._changes += 1
        if self._changes >= self.period:
            self.value = rsi_of(self._gain, self._loss)

    def state(self) -> list[Any]:
        return [
            None if math.isnan(self._last) else self._last,
            self._gain,
            self._loss,
            self._changes,
        ]

    def restore(self, state: list[Any]) -> None:
        last, self._gain, self._loss, changes = state
        self._last = _NAN if last is None else last
        self._changes = int(changes)
        self.value = rsi_of(self._gain, self._loss) if self._changes >= self.period else _NAN


def rsi_of(gain: float, loss: float) -> float:
    """The RSI of average gain and loss: 100 with no loss, 50 with neither."""
    if loss == 0.0:
        return 100.0 if gain > 0.0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


class BarSeries:
    """The bars of one interval of one symbol, and the indicators computed from them."""

    __slots__ = ("builder", "indicators", "label")

    def __init__(self, builder: BarBuilder) -> None:
        self.builder = builder
        self.label = builder.label
        # By their text ('sma(20, "5m")'): rules reading the same indicator share it.
        self.indicators: dict[str, BarIndicator] = {}

    def closed(self, bar: Bar) -> None:
        """``bar`` has closed: every indicator takes it."""
        for indicator in self.indicators.values():
            indicator.update(bar)

    def state(self) -> list[Any]:
        return [self.builder.state(), {key: ind.state() for key, ind in self.indicators.items()}]

    def restore(self, state: list[Any] | None) -> None:
        if state is None:
            return
        builder, indicators = state
        self.builder.restore(builder)
        for key, indicator in self.indicators.items():
            if key in indicators:
                indicator.restore(indicators[key])
