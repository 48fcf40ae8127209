"""The rule engine: a synchronous, sans-I/O core that turns ticks into alert events.

Live streams, replay and tests drive the same :meth:`RuleEngine.on_tick`. The
engine reads no clock (time is the tick's time) and does no I/O, so feeding
the same ticks always gives the same alerts, in the same order, with the
same ids.

Speed comes from one observation: most ticks cannot change any rule's state.
Each symbol's book keeps the closed price interval in which a tick is inert
for every rule it watches (see :class:`~service.rules.watch.Watch`)
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

import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from service.errors import TickError, TickOutOfOrderError
from service.models import AlertEvent, Indicator, Rule, RuleStatus, Tick, format_price
from service.rules.band import PriceBand
from service.rules.indicators import (
    BarIndicator,
    BarSeries,
    ExponentialAverage,
    RelativeStrength,
    SimpleAverage,
)
from service.rules.sessions import Market
from service.rules.watch import Life, Watch, rule_key, specs_of
from service.rules.window import Bar, BarBuilder, TickWindow, Value
from service.timestamps import parse_duration

_INF = math.inf
_NEVER = -(2**63)
SameTime = Literal["reject", "accept"]
# The market of a symbol: its hours, for rules with a session.
MarketOf = Callable[[str], Market]
# A bar opened: its end, symbol and interval.
BarOpened = Callable[[int, str, str], None]
_ALWAYS_OPEN = Market.always_open()


class SymbolBook:
    """Everything the engine keeps for one symbol: watches, bars, windows, band, time and price.

    A bar series or a window is kept only while a rule of the symbol reads
    it: nothing is computed that no rule reads.
    """

    __slots__ = (
        "band",
        "bar_watches",
        "every_tick",
        "last_price",
        "last_ts_ns",
        "lives",
        "opened",
        "quiet_high",
        "quiet_low",
        "series",
        "series_list",
        "symbol",
        "tick_watches",
        "window_list",
        "windows",
    )

    def __init__(self, symbol: str, band: PriceBand | None, opened: BarOpened) -> None:
        self.symbol = symbol
        self.band = band
        # Tells the engine of a bar that opens (its end, symbol, interval): the watermark closes it.
        self.opened = opened
        self.tick_watches: list[Watch] = []
        self.bar_watches: dict[str, list[Watch]] = {}
        self.series: dict[str, BarSeries] = {}
        self.windows: dict[str, TickWindow] = {}
        self.lives: dict[Rule, Life] = {}
        # The same, as lists for the hot loop; every_tick: bars or windows read each tick.
        self.series_list: list[BarSeries] = []
        self.window_list: list[TickWindow] = []
        self.every_tick = False
        self.last_ts_ns = _NEVER
        self.last_price = math.nan
        self.quiet_low = -_INF
        self.quiet_high = _INF

    def watch(self, rules: Iterable[Rule], changed: set[str], market: Market) -> None:
        """Build the watches of ``rules`` (this symbol's), with the series and windows they read."""
        self.tick_watches, self.bar_watches = [], {}
        self.series, self.windows, self.lives = {}, {}, {}
        for rule in rules:
            life = Life(rule, changed)
            self.lives[rule] = life
            hours = market.hours(rule.session)
            for spec in specs_of(rule):
                watch = Watch(
                    spec,
                    life,
                    self._resolve,
                    volume_of=self._volume_of,
                    session=hours,
                    on_bars=rule.trigger == "bar_close",
                )
                if rule.trigger == "bar_close":
                    self._series(rule.bar or "1m")
                    self.bar_watches.setdefault(rule.bar or "1m", []).append(watch)
                else:
                    self.tick_watches.append(watch)
        self.series_list = list(self.series.values())
        self.window_list = list(self.windows.values())
        self.every_tick = bool(self.series or self.windows)
        self.update_quiet()

    def _series(self, label: str) -> BarSeries:
        series = self.series.get(label)
        if series is None:
            series = self.series[label] = BarSeries(BarBuilder(parse_duration(label), label))
        return series

    def _resolve(self, indicator: Indicator) -> Value:
        if indicator.of_bars:
            series = self._series(indicator.span)
            key = str(indicator)
            found = series.indicators.get(key)
            if found is None:
                found = series.indicators[key] = _bar_indicator(indicator)
            return found
        window = self.windows.get(indicator.span)
        if window is None:
            window = self.windows[indicator.span] = TickWindow(
                parse_duration(indicator.span), indicator.span
            )
            window.need_extremes = False
        if indicator.name in ("high", "low"):
            window.need_extremes = True
        if indicator.name == "high":
            return window.high
        if indicator.name == "low":
            return window.low
        return window.vwap

    def _volume_of(self, label: str) -> Callable[[], float]:
        builder = self._series(label).builder
        return lambda: builder.volume

    def evaluate(self, price: float, ts_ns: int, volume: float) -> list[AlertEvent]:
        """Run one accepted tick through the bars, windows and watches of this symbol."""
        alerts: list[AlertEvent] = []
        # Bars first: a bar this tick closes ended before the tick, so its alerts come first.
        for series in self.series_list:
            builder = series.builder
            if builder.push(ts_ns, price, volume):
                closed = builder.closed
                if closed is not None:
                    alerts += self.close(series, closed)
                self.opened(builder.end_ns, self.symbol, series.label)
        for window in self.window_list:
            window.push(ts_ns, price, volume)
        for watch in self.tick_watches:
            moving = watch.moving_level
            x = price if moving is None else price - moving.value
            if watch.quiet_low <= x <= watch.quiet_high:
                continue  # cannot change this watch's state
            if x != x and not watch.may_expire:
                continue  # its level is not ready yet: nothing to change
            if watch.step(price, ts_ns):
                alerts.append(watch.alert(price, ts_ns))
        if not self.every_tick:
            self.update_quiet()
        return alerts

    def close(self, series: BarSeries, bar: Bar) -> list[AlertEvent]:
        """``bar`` of ``series`` closed: its indicators take it, then the rules closing on it."""
        series.closed(bar)
        alerts = []
        for watch in self.bar_watches.get(series.label, ()):
            if watch.step(bar.close, bar.end_ns):
                alerts.append(watch.alert(bar.close, bar.end_ns))
        return alerts

    def watches(self) -> list[Watch]:
        return [*self.tick_watches, *(w for ws in self.bar_watches.values() for w in ws)]

    def state(self) -> list[Any]:
        """What it keeps, for a checkpoint.

        Time, price, band, bars in progress (as before rules had conditions,
        so older checkpoints are read), each watch, then each bar series with
        its indicators, each window, and each rule's lifecycle.
        """
        return [
            None if self.last_ts_ns == _NEVER else self.last_ts_ns,
            None if math.isnan(self.last_price) else self.last_price,
            None if self.band is None else self.band.state(),
            {label: series.builder.state() for label, series in self.series.items()},
            [[watch.key, watch.state()] for watch in self.watches()],
            {label: series.state() for label, series in self.series.items()},
            {label: window.state() for label, window in self.windows.items()},
            {rule_key(rule): life.state() for rule, life in self.lives.items()},
        ]

    def restore(self, state: list[Any], stash: dict[str, list[list[Any]]]) -> None:
        """Take back what :meth:`state` gave; states of rules it no longer has go to ``stash``."""
        last_ts, last_price, band, bars, watches = state[:5]
        # A checkpoint from before rules had conditions has only the first five.
        series_states, windows, lives = [*state[5:8], {}, {}, {}][:3]
        self.last_ts_ns = _NEVER if last_ts is None else last_ts
        self.last_price = math.nan if last_price is None else last_price
        if self.band is not None:
            self.band.restore(band)
        for label, series in self.series.items():
            if label in series_states:
                series.restore(series_states[label])
            else:
                series.builder.restore(bars.get(label))
            end_ns = series.builder.open_end_ns
            if end_ns is not None:
                self.opened(end_ns, self.symbol, label)
        for label, window in self.windows.items():
            window.restore(windows.get(label))
        keys = {rule_key(rule): life for rule, life in self.lives.items()}
        for key, life in keys.items():
            if key in lives:
                life.restore(lives[key])
        saved: dict[str, list[list[Any]]] = {}
        for key, watch_state in watches:
            saved.setdefault(key, []).append(watch_state)
        for key, life_state in lives.items():
            if key not in keys:
                saved.setdefault("life:" + key, []).append(life_state)
        for watch in self.watches():
            states = saved.get(watch.key)
            if states:
                watch.restore(states.pop(0))
        for key, states in saved.items():
            if states:
                stash.setdefault(key, []).extend(states)
        self.update_quiet()

    def take_stash(self, stash: dict[str, list[list[Any]]] | None) -> None:
        """Restored states of rules that come back (an article's): watches and lifecycles."""
        if not stash:
            return
        for rule, life in self.lives.items():
            states = stash.get("life:" + rule_key(rule))
            if states:
                life.restore(states.pop(0))
        for watch in self.watches():
            states = stash.get(watch.key)
            if states:
                watch.restore(states.pop(0))
        self.update_quiet()

    def update_quiet(self) -> None:
        if self.series or self.windows:
            # Bars and windows need every tick.
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


def _bar_indicator(indicator: Indicator) -> BarIndicator:
    period = indicator.period or 1
    if indicator.name == "sma":
        return SimpleAverage(period)
    if indicator.name == "sma_volume":
        return SimpleAverage(period, of_volume=True)
    if indicator.name == "ema":
        return ExponentialAverage(period)
    return RelativeStrength(period)


class RuleEngine:
    """Evaluates rules over a stream of ticks.

    A symbol's rules build the bars and windows they read, and only those:
    bars and windows cost work on every tick of their symbol.

    Ticks of one symbol must come in non-decreasing time; an older one raises
    :class:`~service.errors.TickOutOfOrderError` and changes nothing. What
    else is refused (``same_time``, ``price_band``) is in the module docstring.

    Time is the ticks' time. The *watermark* is the latest tick time seen on
    any symbol, or the clock the caller passes to :meth:`advance`, whichever
    is later, less ``lateness_ns``: a bar closes when its own symbol ticks
    after its end or when the watermark passes its end, whichever comes
    first, so a quiet symbol's bar-close alert does not wait for its next tick.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        same_time: SameTime = "reject",
        price_band: float = 0.0,
        rebase_ticks: int = 3,
        lateness_ns: int = 0,
        market_of: MarketOf | None = None,
    ) -> None:
        self._reject_same_time = same_time == "reject"
        self._price_band = price_band
        self._rebase_ticks = rebase_ticks
        if price_band:
            PriceBand(price_band, rebase_ticks=rebase_ticks)  # the settings' checks, now
        if lateness_ns < 0:
            raise ValueError(f"lateness must be 0 or more, got {lateness_ns} ns")
        self._lateness_ns = lateness_ns
        self._market_of = market_of
        self._books: dict[str, SymbolBook] = {}
        # Restored states of rules not watched now, by symbol and key: a rule that
        # comes back (an article's, read after start-up) takes its state back.
        self._stash: dict[str, dict[str, list[list[Any]]]] = {}
        self.rules: tuple[Rule, ...] = ()
        self._by_symbol: dict[str, list[Rule]] = {}
        # (end, symbol, bar) of bars in progress, for the watermark to close.
        self._opened: list[tuple[int, str, str]] = []
        # (expires, rule id, symbol) of rules that expire, soonest first.
        self._expiring: list[tuple[int, str, str]] = []
        # The watermark passes the next bar end or expiry at this time: nothing to do before
        # (None: nothing is due at all, which the fast path tells at the cost of an "is").
        self._due_ns: int | None = None
        self.watermark_ns = _NEVER
        # Rules whose status changed (done, expired, paused) since taken; symbols changed
        # other than by their own tick (a bar closed by the watermark, a pause).
        self.status_changed: set[str] = set()
        self.touched: set[str] = set()
        self.set_rules(rules)

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Watch ``rules`` from now on, instead of the rules watched so far.

        A rule that was already watched (equal in every field) keeps its state:
        armed or not, its run, its cooldown, its lifecycle, the bars and
        windows it reads. A new rule starts unarmed, as at start-up, so a level
        the price is already beyond alerts only after the price comes back to
        its safe side. Call it between ticks; it is cheap for the symbols whose
        rules did not change.
        """
        self.rules = tuple(rules)
        by_symbol: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_symbol.setdefault(rule.symbol, []).append(rule)
        old, self._by_symbol = self._by_symbol, by_symbol
        for symbol, book in self._books.items():
            if by_symbol.get(symbol, []) != old.get(symbol, []):
                state = book.state()
                self._build(book)
                stash = self._stash.setdefault(symbol, {})
                book.restore(state, stash)
                book.take_stash(stash)
                if not stash:
                    del self._stash[symbol]
        self._expiring = sorted(
            (rule.expires_ns, rule.id, rule.symbol)
            for rule in self.rules
            if rule.expires_ns is not None
        )
        self._update_due()

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        """Evaluate one tick; return the alerts it fires (usually none).

        Alerts of bars the watermark or this tick closed come first (those
        bars ended before it), then the tick's own, each group in rule order.
        A tick the engine refuses raises :class:`~service.errors.TickError`
        and changes nothing.
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
        band = book.band
        # Inside the band's zone nothing changes: the call is only for prices beyond it.
        if (
            not book.quiet_low <= price <= book.quiet_high
            and band is not None
            and not band.zone_low <= price <= band.zone_high
            and not band.admit(price)
        ):
            book.update_quiet()
            raise _implausible(tick, band)
        due_ns = self._due_ns
        alerts = self._pass(ts_ns) if due_ns is not None and ts_ns >= due_ns else []
        book.last_ts_ns = ts_ns
        book.last_price = price
        if book.quiet_low <= price <= book.quiet_high:
            return alerts
        alerts += book.evaluate(price, ts_ns, tick.volume or 0.0)
        return alerts

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
        due_ns = self._due_ns
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
                if due_ns is not None and ts_ns >= due_ns:
                    alerts += self._pass(ts_ns)
                    due_ns = self._due_ns
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
            if due_ns is not None and ts_ns >= due_ns:
                alerts += self._pass(ts_ns)
                due_ns = self._due_ns
            book.last_ts_ns = ts_ns
            book.last_price = price
            fired = book.evaluate(price, ts_ns, tick.volume or 0.0)
            if fired:
                alerts.extend(fired)
            due_ns = self._due_ns  # a bar the tick opened may be due before anything so far
        return alerts

    def advance(self, clock_ns: int) -> list[AlertEvent]:
        """Time is ``clock_ns`` (in tick time) even if no tick says so: close what has ended.

        The engine task calls it with its estimate of the feed's clock (the
        latest tick's time plus the wall time since it arrived); the bars it
        closes are added to :attr:`touched`.
        """
        due_ns = self._due_ns
        if due_ns is not None and clock_ns >= due_ns:
            return self._pass(clock_ns)
        return []

    def _pass(self, clock_ns: int) -> list[AlertEvent]:
        """The watermark moved with ``clock_ns``: close the bars and expire the rules it passed."""
        watermark = clock_ns - self._lateness_ns
        if watermark > self.watermark_ns:
            self.watermark_ns = watermark
        alerts: list[AlertEvent] = []
        opened = self._opened
        books = self._books
        touched = self.touched
        pop = heapq.heappop
        while opened and opened[0][0] <= watermark:
            _, symbol, label = pop(opened)
            book = books.get(symbol)
            series = None if book is None else book.series.get(label)
            if series is None:
                continue  # no longer read
            # None when its own tick closed it already (a later bar is open, or none).
            bar = series.builder.close_by(watermark)
            if bar is not None:
                assert book is not None
                fired = book.close(series, bar)
                if fired:
                    alerts += fired
                touched.add(symbol)
        expiring = self._expiring
        while expiring and expiring[0][0] <= watermark:
            _, rule_id, symbol = expiring.pop(0)
            book = books.get(symbol)
            if book is None:
                continue  # never ticked: status() judges it by the watermark
            for life in book.lives.values():
                if life.rule.id == rule_id:
                    life.expire()
                    self.touched.add(symbol)
            book.update_quiet()
        self._update_due()
        return alerts

    def _bar_opened(self, end_ns: int, symbol: str, label: str) -> None:
        heapq.heappush(self._opened, (end_ns, symbol, label))
        due_ns = end_ns + self._lateness_ns
        if self._due_ns is None or due_ns < self._due_ns:
            self._due_ns = due_ns

    def _update_due(self) -> None:
        due: int | None = None
        if self._opened:
            due = self._opened[0][0] + self._lateness_ns
        if self._expiring and (due is None or self._expiring[0][0] + self._lateness_ns < due):
            due = self._expiring[0][0] + self._lateness_ns
        self._due_ns = due

    def pause(self, rule_id: str, *, paused: bool = True) -> bool:
        """Pause (or resume) the rule ``rule_id``; ``False`` if the engine has no such rule.

        A paused rule looks at no tick. Resumed, it starts afresh, unarmed, as a
        new rule does (a rule that had fired once is active again); an expired
        rule stays expired.
        """
        found = False
        for rule in self.rules:
            if rule.id != rule_id:
                continue
            found = True
            book = self._books.get(rule.symbol) or self._open_book(rule.symbol)
            life = book.lives[rule]
            life.pause(paused)
            if not paused:
                for watch in book.watches():
                    if watch.life is life:
                        watch.reset()
            for watch in book.watches():
                watch.update_quiet()
            book.update_quiet()
            self.touched.add(rule.symbol)
        return found

    def status(self, rule: Rule) -> RuleStatus:
        """What ``rule`` is now: active, paused, done (fired once) or expired."""
        book = self._books.get(rule.symbol)
        life = None if book is None else book.lives.get(rule)
        if life is not None:
            return life.status
        if rule.expires_ns is not None and rule.expires_ns <= self.watermark_ns:
            return "expired"
        return "paused" if rule.paused else "active"

    def late_ticks(self) -> int:
        """Ticks older than the end of a bar the watermark had closed, since start-up."""
        return sum(
            series.builder.late for book in self._books.values() for series in book.series_list
        )

    def take_touched(self) -> set[str]:
        """The symbols changed other than by their own ticks since the last call."""
        touched, self.touched = self.touched, set()
        return touched

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
            if book.last_ts_ns - self._lateness_ns > self.watermark_ns:
                self.watermark_ns = book.last_ts_ns - self._lateness_ns
        self._update_due()

    def current_bar(self, symbol: str, interval: str) -> Bar | None:
        """The ``interval`` bar of ``symbol`` still being built, if any."""
        book = self._books.get(symbol)
        series = None if book is None else book.series.get(interval)
        return None if series is None else series.builder.current()

    def indicator(self, symbol: str, indicator: Indicator) -> float | None:
        """The value a rule of ``symbol`` reading ``indicator`` compared with at the last tick.

        ``None`` when no rule reads it; NaN while it is not ready.
        """
        book = self._books.get(symbol)
        if book is None:
            return None
        if indicator.of_bars:
            series = book.series.get(indicator.span)
            found = None if series is None else series.indicators.get(str(indicator))
            return None if found is None else found.value
        window = book.windows.get(indicator.span)
        if window is None:
            return None
        value = {"high": window.high, "low": window.low, "vwap": window.vwap}[indicator.name]
        return value.value

    def _build(self, book: SymbolBook) -> None:
        market = _ALWAYS_OPEN if self._market_of is None else self._market_of(book.symbol)
        book.watch(self._by_symbol.get(book.symbol, []), self.status_changed, market)

    def _open_book(self, symbol: str) -> SymbolBook:
        book = SymbolBook(
            symbol,
            PriceBand(self._price_band, rebase_ticks=self._rebase_ticks)
            if self._price_band
            else None,
            self._bar_opened,
        )
        self._build(book)
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
