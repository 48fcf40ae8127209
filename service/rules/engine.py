"""The rule engine: a synchronous, sans-I/O core that turns ticks into alert events.

Live streams, replay and tests drive the same :meth:`RuleEngine.on_tick`. The
engine reads no clock (time is the tick's time) and does no I/O, so feeding
the same ticks always gives the same alerts, in the same order, with the
same ids.

Speed comes from one observation: most ticks cannot change any rule's state.
Each symbol's book keeps the closed price interval in which a tick is inert
for every rule it watches (see :class:`~service.rules.levels.LevelWatch`)
and changes nothing in its price band; such a tick costs one dictionary
look-up and a few comparisons.

What the engine accepts (every rejection raises or reports a
:class:`~service.errors.TickError` and changes nothing):

* time is the order: a tick older than its symbol's last accepted tick is
  rejected (``out_of_order``);
* one instant has one price: a tick at the same time as the last accepted
  one of its symbol, with another price, is rejected (``same_time``), since
  which of the two came last cannot be told. With ``same_time = "accept"``
  such ticks are evaluated in arrival order, for feeds whose timestamps are
  coarser than their trades. A tick at the same time and price is accepted;
* with a ``price_band`` (a fraction), a price outside the band around the
  symbol's recent prices is rejected (``price_implausible``); see
  :mod:`service.rules.band`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from service.errors import TickError, TickOutOfOrderError
from service.models import AlertEvent, LevelRule, RangeRule, Rule, Tick, format_price
from service.rules.band import PriceBand
from service.rules.levels import LevelWatch
from service.rules.window import Bar, BarBuilder
from service.timestamps import parse_duration

_INF = math.inf
_NEVER = -(2**63)
SameTime = Literal["reject", "accept"]


class SymbolBook:
    """Everything the engine keeps for one symbol: watches, bars, band, time and price.

    A bar is built only while a rule of the symbol closes on it: nothing is
    computed that no rule reads.
    """

    __slots__ = (
        "band",
        "bar_watches",
        "bars",
        "last_price",
        "last_ts_ns",
        "quiet_high",
        "quiet_low",
        "tick_watches",
    )

    def __init__(
        self,
        *,
        tick_watches: list[LevelWatch],
        bar_watches: dict[str, list[LevelWatch]],
        bars: list[BarBuilder],
        band: PriceBand | None = None,
    ) -> None:
        self.tick_watches = tick_watches
        self.bar_watches = bar_watches
        self.bars = bars
        self.band = band
        self.last_ts_ns = _NEVER
        self.last_price = math.nan
        self.quiet_low = -_INF
        self.quiet_high = _INF
        self.update_quiet()

    def evaluate(self, price: float, ts_ns: int, volume: float) -> list[AlertEvent]:
        """Run one accepted tick through the bars and watches of this symbol."""
        alerts: list[AlertEvent] = []
        # Bars first: a bar this tick closes ended before the tick, so its alerts come first.
        for builder in self.bars:
            closed = builder.push(ts_ns, price, volume)
            if closed is not None:
                for watch in self.bar_watches.get(builder.label, ()):
                    if watch.step(closed.close, closed.end_ns):
                        alerts.append(watch.alert(closed.close, closed.end_ns))
        for watch in self.tick_watches:
            if watch.quiet_low <= price <= watch.quiet_high:
                continue  # cannot change this watch's state
            if watch.step(price, ts_ns):
                alerts.append(watch.alert(price, ts_ns))
        self.update_quiet()
        return alerts

    def state(self) -> list[Any]:
        """What it keeps, for a checkpoint: time, price, band, bars in progress, each watch."""
        watches = [*self.tick_watches, *(w for ws in self.bar_watches.values() for w in ws)]
        return [
            None if self.last_ts_ns == _NEVER else self.last_ts_ns,
            None if math.isnan(self.last_price) else self.last_price,
            None if self.band is None else self.band.state(),
            {builder.label: builder.state() for builder in self.bars},
            [[watch.key, watch.state()] for watch in watches],
        ]

    def restore(self, state: list[Any], stash: dict[str, list[list[int]]]) -> None:
        """Take back what :meth:`state` gave; states of rules it no longer has go to ``stash``."""
        last_ts, last_price, band, bars, watches = state
        self.last_ts_ns = _NEVER if last_ts is None else last_ts
        self.last_price = math.nan if last_price is None else last_price
        if self.band is not None:
            self.band.restore(band)
        for builder in self.bars:
            builder.restore(bars.get(builder.label))
        saved: dict[str, list[list[int]]] = {}
        for key, watch_state in watches:
            saved.setdefault(key, []).append(watch_state)
        for watch in [*self.tick_watches, *(w for ws in self.bar_watches.values() for w in ws)]:
            states = saved.get(watch.key)
            if states:
                watch.restore(states.pop(0))
        for key, states in saved.items():
            if states:
                stash.setdefault(key, []).extend(states)
        self.update_quiet()

    def update_quiet(self) -> None:
        if self.bars:
            # Bars need every tick.
            self.quiet_low, self.quiet_high = _INF, -_INF
            return
        low, high = -_INF, _INF
        if self.band is not None:
            low, high = self.band.zone_low, self.band.zone_high
        for watch in self.tick_watches:
            if watch.quiet_low > low:
                low = watch.quiet_low
            if watch.quiet_high < high:
                high = watch.quiet_high
        self.quiet_low, self.quiet_high = low, high


class RuleEngine:
    """Evaluates rules over a stream of ticks.

    A symbol's bar-close rules build the OHLCV bars they close on, and only
    those: bars cost work on every tick of their symbol.

    Ticks of one symbol must come in non-decreasing time; an older one raises
    :class:`~service.errors.TickOutOfOrderError` and changes nothing. What
    else is refused (``same_time``, ``price_band``) is in the module docstring.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        same_time: SameTime = "reject",
        price_band: float = 0.0,
        rebase_ticks: int = 3,
    ) -> None:
        self._reject_same_time = same_time == "reject"
        self._price_band = price_band
        self._rebase_ticks = rebase_ticks
        if price_band:
            PriceBand(price_band, rebase_ticks=rebase_ticks)  # the settings' checks, now
        self._books: dict[str, SymbolBook] = {}
        # Restored states of rules not watched now, by symbol and rule key: a rule that
        # comes back (an article's, read after start-up) takes its state back.
        self._stash: dict[str, dict[str, list[list[int]]]] = {}
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
                self._rewatch(symbol, book, sides.get(symbol, []))

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        """Evaluate one tick; return the alerts it fires (usually none).

        Alerts of bars this tick closed come first (those bars ended before
        it), then the tick's own, each group in rule order. A tick the engine
        refuses raises :class:`~service.errors.TickError` and changes nothing.
        """
        try:
            book = self._books[tick.symbol]
        except KeyError:
            book = self._open_book(tick.symbol)
        ts_ns = tick.ts_ns
        price = tick.price
        if ts_ns <= book.last_ts_ns:
            if ts_ns < book.last_ts_ns:
                raise TickOutOfOrderError(tick.symbol, ts_ns, book.last_ts_ns)
            if self._reject_same_time and price != book.last_price:
                raise _same_time(tick, book.last_price)
        if book.quiet_low <= price <= book.quiet_high:
            book.last_ts_ns = ts_ns
            book.last_price = price
            return []
        band = book.band
        # Inside the band's zone nothing changes: the call is only for prices beyond it.
        if (
            band is not None
            and not band.zone_low <= price <= band.zone_high
            and not band.admit(price)
        ):
            book.update_quiet()
            raise _implausible(tick, band)
        book.last_ts_ns = ts_ns
        book.last_price = price
        return book.evaluate(price, ts_ns, tick.volume or 0.0)

    def on_ticks(
        self,
        ticks: Iterable[Tick],
        on_reject: Callable[[Tick, TickError], None] | None = None,
    ) -> list[AlertEvent]:
        """Evaluate a batch of ticks in order; the same alerts as one ``on_tick`` each.

        A rejected tick is passed to ``on_reject`` (when given) and the batch goes on.
        """
        # The body of on_tick, inlined: a method call per tick would cost more
        # than the whole fast path. The property tests hold the two to the same results.
        alerts: list[AlertEvent] = []
        books = self._books
        reject_same_time = self._reject_same_time
        for tick in ticks:
            try:
                book = books[tick.symbol]
            except KeyError:
                book = self._open_book(tick.symbol)
            ts_ns = tick.ts_ns
            price = tick.price
            if ts_ns <= book.last_ts_ns:
                error: TickError | None = None
                if ts_ns < book.last_ts_ns:
                    error = TickOutOfOrderError(tick.symbol, ts_ns, book.last_ts_ns)
                elif reject_same_time and price != book.last_price:
                    error = _same_time(tick, book.last_price)
                if error is not None:
                    if on_reject is not None:
                        on_reject(tick, error)
                    continue
            if book.quiet_low <= price <= book.quiet_high:
                book.last_ts_ns = ts_ns
                book.last_price = price
                continue
            band = book.band
            if (
                band is not None
                and not band.zone_low <= price <= band.zone_high
                and not band.admit(price)
            ):
                book.update_quiet()
                if on_reject is not None:
                    on_reject(tick, _implausible(tick, band))
                continue
            book.last_ts_ns = ts_ns
            book.last_price = price
            fired = book.evaluate(price, ts_ns, tick.volume or 0.0)
            if fired:
                alerts.extend(fired)
        return alerts

    def symbols(self) -> list[str]:
        """The symbols that have ticked (or been restored)."""
        return list(self._books)

    def snapshot(self, symbols: Iterable[str]) -> dict[str, list[Any]]:
        """The state of ``symbols`` (those the engine knows), for a checkpoint.

        Restored with :meth:`restore` into an engine of the same rules, it gives
        the same alerts on every tick that follows.
        """
        books = self._books
        return {symbol: books[symbol].state() for symbol in symbols if symbol in books}

    def restore(self, states: Mapping[str, list[Any]]) -> None:
        """Take back the states of a :meth:`snapshot`, before any tick.

        A rule the engine no longer has (removed while the service was down)
        drops its state; one it did not have starts afresh, as with :meth:`set_rules`.
        """
        for symbol, state in states.items():
            book = self._books.get(symbol) or self._open_book(symbol)
            book.restore(state, self._stash.setdefault(symbol, {}))
            if not self._stash[symbol]:
                del self._stash[symbol]

    def current_bar(self, symbol: str, interval: str) -> Bar | None:
        """The ``interval`` bar of ``symbol`` still being built, if any."""
        book = self._books.get(symbol)
        if book is None:
            return None
        for builder in book.bars:
            if builder.label == interval:
                return builder.current()
        return None

    def _rewatch(self, symbol: str, book: SymbolBook, sides: list[LevelRule]) -> None:
        kept: dict[LevelRule, list[LevelWatch]] = {}
        for watch in [*book.tick_watches, *(w for ws in book.bar_watches.values() for w in ws)]:
            kept.setdefault(watch.rule, []).append(watch)
        book.tick_watches, book.bar_watches = _watches(sides, kept, self._stash.get(symbol))
        # Bars still closed on keep their state; those no rule closes on any more go.
        builders = {builder.label: builder for builder in book.bars}
        book.bars = [
            builders.get(label) or BarBuilder(parse_duration(label), label)
            for label in book.bar_watches
        ]
        book.update_quiet()

    def _open_book(self, symbol: str) -> SymbolBook:
        tick_watches, bar_watches = _watches(self._sides.get(symbol, []), {})
        book = SymbolBook(
            tick_watches=tick_watches,
            bar_watches=bar_watches,
            bars=[BarBuilder(parse_duration(label), label) for label in bar_watches],
            band=PriceBand(self._price_band, rebase_ticks=self._rebase_ticks)
            if self._price_band
            else None,
        )
        self._books[symbol] = book
        return book


def _same_time(tick: Tick, last_price: float) -> TickError:
    return TickError(
        "same_time",
        f"{tick.symbol} tick at {tick.at} has price {format_price(tick.price)}, the tick "
        f"accepted at that same time {format_price(last_price)}: the first is kept "
        '([engine] same_time = "accept" takes both, in arrival order)',
    )


def _implausible(tick: Tick, band: PriceBand) -> TickError:
    low, high = band.low_high()
    return TickError(
        "price_implausible",
        f"{tick.symbol} price {format_price(tick.price)} is outside "
        f"{format_price(low)}..{format_price(high)}, the band around its recent prices "
        "([engine] price_band_percent)",
    )


def _watches(
    sides: list[LevelRule],
    kept: dict[LevelRule, list[LevelWatch]],
    stash: dict[str, list[list[int]]] | None = None,
) -> tuple[list[LevelWatch], dict[str, list[LevelWatch]]]:
    """Watches for ``sides``, reusing a kept watch of an equal rule (with its state).

    A new watch takes a stashed state of its rule (a restored one) when there is one.
    """
    tick_watches: list[LevelWatch] = []
    bar_watches: dict[str, list[LevelWatch]] = {}
    for side in sides:
        reusable = kept.get(side)
        if reusable:
            watch = reusable.pop(0)
        else:
            watch = LevelWatch(side)
            stashed = None if stash is None else stash.get(watch.key)
            if stashed:
                watch.restore(stashed.pop(0))
        if side.trigger == "bar_close" and side.bar is not None:
            bar_watches.setdefault(side.bar, []).append(watch)
        else:
            tick_watches.append(watch)
    return tick_watches, bar_watches
