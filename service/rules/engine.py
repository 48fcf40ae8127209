"""The rule engine: a synchronous, sans-I/O core that turns ticks into alert events.

Live streams, replay and tests drive the same :meth:`RuleEngine.on_tick`. The
engine reads no clock (time is the tick's time) and does no I/O, so feeding
the same ticks always gives the same alerts, in the same order, with the
same ids.

Speed comes from one observation: most ticks cannot change any rule's state.
Each symbol's book keeps the closed price interval in which a tick is inert
for every rule it watches (see :class:`~service.rules.levels.LevelWatch`);
such a tick costs one dictionary look-up and two comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from service.errors import TickOutOfOrderError
from service.models import AlertEvent, LevelRule, RangeRule, Rule, Tick
from service.rules.levels import LevelWatch
from service.rules.window import Bar, BarBuilder, RollingWindow, WindowStats
from service.timestamps import parse_duration

_INF = math.inf


class SymbolBook:
    """Everything the engine keeps for one symbol: its watches, bars, windows and time."""

    __slots__ = (
        "bar_watches",
        "bars",
        "last_ts_ns",
        "quiet_high",
        "quiet_low",
        "tick_watches",
        "windows",
    )

    def __init__(
        self,
        *,
        tick_watches: list[LevelWatch],
        bar_watches: dict[str, list[LevelWatch]],
        bars: list[BarBuilder],
        windows: list[RollingWindow],
    ) -> None:
        self.tick_watches = tick_watches
        self.bar_watches = bar_watches
        self.bars = bars
        self.windows = windows
        self.last_ts_ns = 0
        self.quiet_low = -_INF
        self.quiet_high = _INF
        self.update_quiet()

    def evaluate(self, price: float, ts_ns: int, volume: float) -> list[AlertEvent]:
        """Run one accepted tick through the bars, windows and watches of this symbol."""
        alerts: list[AlertEvent] = []
        # Bars first: a bar this tick closes ended before the tick, so its alerts come first.
        for builder in self.bars:
            closed = builder.push(ts_ns, price, volume)
            if closed is not None:
                for watch in self.bar_watches.get(builder.label, ()):
                    if watch.step(closed.close, closed.end_ns):
                        alerts.append(watch.alert(closed.close, closed.end_ns))
        for window in self.windows:
            window.push(ts_ns, price, volume)
        for watch in self.tick_watches:
            if watch.quiet_low <= price <= watch.quiet_high:
                continue  # cannot change this watch's state
            if watch.step(price, ts_ns):
                alerts.append(watch.alert(price, ts_ns))
        self.update_quiet()
        return alerts

    def update_quiet(self) -> None:
        if self.bars or self.windows:
            # Bars and windows need every tick.
            self.quiet_low, self.quiet_high = _INF, -_INF
            return
        low, high = -_INF, _INF
        for watch in self.tick_watches:
            if watch.quiet_low > low:
                low = watch.quiet_low
            if watch.quiet_high < high:
                high = watch.quiet_high
        self.quiet_low, self.quiet_high = low, high


class RuleEngine:
    """Evaluates rules over a stream of ticks.

    ``windows`` are rolling-statistics spans and ``bars`` OHLCV bar intervals
    (``"1m"``, ``"5m"``…) kept for every symbol; a symbol's bar-close rules add
    the bars they need to that symbol. Both cost work on every tick, so they
    are opt-in.

    Ticks of one symbol must come in non-decreasing time; an older one raises
    :class:`~service.errors.TickOutOfOrderError` and changes nothing.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        windows: Sequence[str] = (),
        bars: Sequence[str] = (),
    ) -> None:
        self._window_spans = {label: parse_duration(label) for label in windows}
        self._bar_intervals = {label: parse_duration(label) for label in bars}
        self._books: dict[str, SymbolBook] = {}
        self.rules: tuple[Rule, ...] = ()
        self._sides: dict[str, list[LevelRule]] = {}
        self.set_rules(rules)

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Watch ``rules`` from now on, instead of the rules watched so far.

        A rule that was already watched (equal in every field) keeps its state:
        armed or not, its run, its cooldown. A new rule starts unarmed, as at
        start-up, so a level the price is already beyond alerts only after the
        price comes back to its safe side. Call it between ticks; it is cheap
        for the symbols whose rules did not change.
        """
        self.rules = tuple(rules)
        sides: dict[str, list[LevelRule]] = {}
        for rule in self.rules:
            sides.setdefault(rule.symbol, []).extend(
                rule.sides() if isinstance(rule, RangeRule) else (rule,)
            )
        old_sides, self._sides = self._sides, sides
        for symbol, book in self._books.items():
            if sides.get(symbol, []) != old_sides.get(symbol, []):
                self._rewatch(book, sides.get(symbol, []))

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        """Evaluate one tick; return the alerts it fires (usually none).

        Alerts of bars this tick closed come first (those bars ended before
        it), then the tick's own, each group in rule order.
        """
        try:
            book = self._books[tick.symbol]
        except KeyError:
            book = self._open_book(tick.symbol)
        ts_ns = tick.ts_ns
        if ts_ns < book.last_ts_ns:
            raise TickOutOfOrderError(tick.symbol, ts_ns, book.last_ts_ns)
        book.last_ts_ns = ts_ns
        price = tick.price
        if book.quiet_low <= price <= book.quiet_high:
            return []
        return book.evaluate(price, ts_ns, tick.volume or 0.0)

    def on_ticks(
        self,
        ticks: Iterable[Tick],
        on_reject: Callable[[Tick, TickOutOfOrderError], None] | None = None,
    ) -> list[AlertEvent]:
        """Evaluate a batch of ticks in order; the same alerts as one ``on_tick`` each.

        A rejected tick is passed to ``on_reject`` (when given) and the batch goes on.
        """
        # The body of on_tick, inlined: a method call per tick would cost more
        # than the whole fast path. The property tests hold the two to the same results.
        alerts: list[AlertEvent] = []
        books = self._books
        for tick in ticks:
            try:
                book = books[tick.symbol]
            except KeyError:
                book = self._open_book(tick.symbol)
            ts_ns = tick.ts_ns
            if ts_ns < book.last_ts_ns:
                if on_reject is not None:
                    on_reject(tick, TickOutOfOrderError(tick.symbol, ts_ns, book.last_ts_ns))
                continue
            book.last_ts_ns = ts_ns
            price = tick.price
            if book.quiet_low <= price <= book.quiet_high:
                continue
            fired = book.evaluate(price, ts_ns, tick.volume or 0.0)
            if fired:
                alerts.extend(fired)
        return alerts

    def window_stats(self, symbol: str) -> list[WindowStats]:
        """Rolling statistics of ``symbol``, one per configured window span."""
        book = self._books.get(symbol)
        if book is None:
            return []
        return [stats for window in book.windows if (stats := window.stats()) is not None]

    def current_bar(self, symbol: str, interval: str) -> Bar | None:
        """The ``interval`` bar of ``symbol`` still being built, if any."""
        book = self._books.get(symbol)
        if book is None:
            return None
        for builder in book.bars:
            if builder.label == interval:
                return builder.current()
        return None

    def _rewatch(self, book: SymbolBook, sides: list[LevelRule]) -> None:
        kept: dict[LevelRule, list[LevelWatch]] = {}
        for watch in [*book.tick_watches, *(w for ws in book.bar_watches.values() for w in ws)]:
            kept.setdefault(watch.rule, []).append(watch)
        book.tick_watches, book.bar_watches = _watches(sides, kept)
        labels = {builder.label for builder in book.bars}
        for label in book.bar_watches:
            if label not in labels:
                book.bars.append(BarBuilder(parse_duration(label), label))
        book.update_quiet()

    def _open_book(self, symbol: str) -> SymbolBook:
        tick_watches, bar_watches = _watches(self._sides.get(symbol, []), {})
        bar_intervals = dict(self._bar_intervals)
        for label in bar_watches:
            bar_intervals.setdefault(label, parse_duration(label))
        book = SymbolBook(
            tick_watches=tick_watches,
            bar_watches=bar_watches,
            bars=[BarBuilder(ns, label) for label, ns in bar_intervals.items()],
            windows=[RollingWindow(ns, label) for label, ns in self._window_spans.items()],
        )
        self._books[symbol] = book
        return book


def _watches(
    sides: list[LevelRule], kept: dict[LevelRule, list[LevelWatch]]
) -> tuple[list[LevelWatch], dict[str, list[LevelWatch]]]:
    """Watches for ``sides``, reusing a kept watch of an equal rule (with its state)."""
    tick_watches: list[LevelWatch] = []
    bar_watches: dict[str, list[LevelWatch]] = {}
    for side in sides:
        reusable = kept.get(side)
        watch = reusable.pop(0) if reusable else LevelWatch(side)
        if side.trigger == "bar_close" and side.bar is not None:
            bar_watches.setdefault(side.bar, []).append(watch)
        else:
            tick_watches.append(watch)
    return tick_watches, bar_watches
