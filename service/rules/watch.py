"""One rule's state machine on one symbol: a :class:`Watch` per rule and direction.

docs/rules.md is the contract, sentence by sentence, with a unit test for
each (``tests/unit/rules/test_conditions.py`` and ``test_levels.py``); a
reference model in the property tests checks the level rules together. In
short, a watch compares a *subject* (the tick's price, or an indicator) with
a *level* (a fixed price, or an indicator) and:

* is *beyond* when its test holds strictly (below: ``x < level``; above:
  ``x > level``; inside a channel: ``low <= x <= high``; a move: the
  distance from the window's low (up) or high (down) reaches the amount);
* as an *event* (crossings, entering a channel, moves) starts unarmed, arms
  on a tick on the other side by at least the hysteresis, and firing disarms
  it; as a *state* (greater_than, less_than, inside and outside a channel)
  it is always armed;
* fires on the first armed tick at which the run of beyond ticks holds at
  least ``confirm_ticks`` ticks and lasts ``confirm_seconds``, the cooldown
  has passed, the frequency allows it (once; once per bar) and, with a
  volume confirmation, the bar's volume is high enough;
* ignores a tick while an indicator it reads is not ready, outside its
  session, after it expires, while paused and once done.

A run that starts while unarmed can never fire: arming needs a tick that is
not beyond, which ends the run. So an unarmed watch ignores beyond ticks.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.models import (
    AlertEvent,
    AlertKind,
    ConditionRule,
    Indicator,
    LevelRule,
    Operand,
    RangeRule,
    Rule,
    RuleStatus,
    alert_id,
    show_operand,
)
from service.rules.sessions import Hours
from service.rules.window import Value
from service.timestamps import parse_duration, seconds_to_ns

_INF = math.inf
_NEVER = -(2**63)
_END_OF_TIME = 2**63 - 1

# The tests a watch makes.
BELOW, ABOVE, INSIDE, UP, DOWN = range(5)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchSpec:
    """What one watch of a rule tests: a rule becomes one or two of these."""

    rule: Rule
    test: int
    kind: AlertKind
    event: bool  # arms and disarms (a crossing); False: a state, true while it holds
    level: Operand | None = None  # BELOW, ABOVE
    low: Operand | None = None  # INSIDE
    high: Operand | None = None
    source: Indicator | None = None  # None: the tick's price
    window: str | None = None  # UP, DOWN: the window of the move
    percent: float | None = None
    amount: float | None = None
    basis: str | None = None


def specs_of(rule: Rule) -> list[WatchSpec]:
    """The watches of ``rule``, in the order their alerts are given."""
    if isinstance(rule, LevelRule):
        test = BELOW if rule.direction == "below" else ABOVE
        kind: AlertKind = "break_below" if test == BELOW else "break_above"
        return [WatchSpec(rule=rule, test=test, kind=kind, event=True, level=rule.level)]
    if isinstance(rule, RangeRule):
        # Exactly its two sides, each a level rule (and keyed as one).
        return [spec for side in rule.sides() for spec in specs_of(side)]
    return _condition_specs(rule)


def _condition_specs(rule: ConditionRule) -> list[WatchSpec]:
    condition = rule.condition
    source = rule.source
    named = None if source is None else str(source)

    def basis(level: Operand | None) -> str | None:
        parts = [str(part) for part in (named, level) if isinstance(part, (str, Indicator))]
        return " vs ".join(parts) if parts else None

    def one(test: int, kind: AlertKind, event: bool, level: Operand | None) -> WatchSpec:
        return WatchSpec(
            rule=rule,
            test=test,
            kind=kind,
            event=event,
            level=level,
            source=source,
            basis=basis(level),
        )

    level = rule.level
    if condition == "cross_below":
        return [one(BELOW, "break_below", True, level)]
    if condition == "cross_above":
        return [one(ABOVE, "break_above", True, level)]
    if condition == "crossing":
        return [one(BELOW, "break_below", True, level), one(ABOVE, "break_above", True, level)]
    if condition == "less_than":
        return [one(BELOW, "below", False, level)]
    if condition == "greater_than":
        return [one(ABOVE, "above", False, level)]
    channel = f"channel {show_operand(rule.low)}-{show_operand(rule.high)}"
    if named is not None:
        channel = f"{named} {channel}"
    if condition == "exit_channel":
        return [
            WatchSpec(
                rule=rule, test=BELOW, kind="break_below", event=True, level=rule.low,
                source=source, basis=basis(rule.low),
            ),
            WatchSpec(
                rule=rule, test=ABOVE, kind="break_above", event=True, level=rule.high,
                source=source, basis=basis(rule.high),
            ),
        ]  # fmt: skip
    if condition == "outside_channel":
        return [
            WatchSpec(
                rule=rule, test=BELOW, kind="outside_channel", event=False, level=rule.low,
                source=source, basis=channel,
            ),
            WatchSpec(
                rule=rule, test=ABOVE, kind="outside_channel", event=False, level=rule.high,
                source=source, basis=channel,
            ),
        ]  # fmt: skip
    if condition in ("enter_channel", "inside_channel"):
        kind: AlertKind = "enter_channel" if condition == "enter_channel" else "inside_channel"
        return [
            WatchSpec(
                rule=rule,
                test=INSIDE,
                kind=kind,
                event=condition == "enter_channel",
                low=rule.low,
                high=rule.high,
                source=source,
                basis=channel,
            )
        ]
    return [
        WatchSpec(
            rule=rule,
            test=UP if condition == "moving_up" else DOWN,
            kind="moving_up" if condition == "moving_up" else "moving_down",
            event=True,
            window=rule.window,
            percent=rule.percent,
            amount=rule.amount,
            basis=rule.move,
        )
    ]


class Life:
    """The lifecycle of one rule on one symbol, shared by its watches: paused, done, expired.

    ``last_bar`` is the bar (its start) of the rule's last alert, for
    ``frequency = "once_per_bar"``; ``changed`` collects the ids of rules whose
    status changed, for the engine to tell its readers.
    """

    __slots__ = (
        "_changed",
        "_once",
        "bar_ns",
        "done",
        "expired",
        "inert",
        "last_bar",
        "paused",
        "per_bar",
        "rule",
    )

    def __init__(self, rule: Rule, changed: set[str]) -> None:
        self.rule = rule
        self._changed = changed
        self._once = rule.frequency == "once"
        self.per_bar = rule.frequency == "once_per_bar"
        self.bar_ns = duration_ns(rule.bar or "1m")
        self.paused = rule.paused
        self.done = False
        self.expired = False
        self.last_bar = _NEVER
        self.inert = self.paused

    @property
    def status(self) -> RuleStatus:
        if self.expired:
            return "expired"
        if self.done:
            return "done"
        return "paused" if self.paused else "active"

    def fired(self, ts_ns: int) -> None:
        self.last_bar = ts_ns - ts_ns % self.bar_ns
        if self._once:
            self.done = True
            self._update()

    def expire(self) -> None:
        if not self.expired:
            self.expired = True
            self._update()

    def pause(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self.done = False  # resuming a rule that fired once watches for the next time
            self.last_bar = _NEVER
        self._update()

    def _update(self) -> None:
        self.inert = self.paused or self.done or self.expired
        self._changed.add(self.rule.id)

    def state(self) -> list[Any]:
        return [int(self.paused), int(self.done), int(self.expired), self.last_bar]

    def restore(self, state: list[Any]) -> None:
        paused, done, expired, self.last_bar = state
        self.paused, self.done, self.expired = bool(paused), bool(done), bool(expired)
        self.inert = self.paused or self.done or self.expired


# What a watch reads of its symbol: the value of an indicator, and a bar series' volume.
Resolve = Callable[[Indicator], Value]
VolumeOf = Callable[[str], Callable[[], float]]


class Watch:
    """Mutable state of one watch of a rule on one symbol.

    Feed it prices in time order with :meth:`step`; it returns ``True`` when
    the rule fires on that price. :attr:`quiet_low` and :attr:`quiet_high`
    bound the prices that cannot change its state right now: the engine skips
    the call for them, which is what makes the common tick cheap. For a level
    that moves (an indicator, :attr:`moving_level`) they bound the price's
    distance from the level instead; a watch whose test is not one level has
    an empty quiet interval: every tick is its business.
    """

    __slots__ = (
        "_armed",
        "_confirm_ns",
        "_confirm_ticks",
        "_cooldown_ns",
        "_event",
        "_expires_ns",
        "_fixed",
        "_high",
        "_high_value",
        "_hysteresis",
        "_last_fire_ns",
        "_level",
        "_level_value",
        "_low",
        "_low_value",
        "_move_amount",
        "_move_percent",
        "_run_count",
        "_run_start_ns",
        "_session",
        "_session_shift",
        "_source",
        "_test",
        "_volume_average",
        "_volume_now",
        "_volume_ratio",
        "_window_high",
        "_window_low",
        "kind",
        "level",
        "life",
        "may_expire",
        "moving_level",
        "quiet_high",
        "quiet_low",
        "rule",
        "spec",
    )

    def __init__(
        self,
        spec: WatchSpec,
        life: Life,
        resolve: Resolve,
        *,
        volume_of: VolumeOf | None = None,
        session: Hours | None = None,
        on_bars: bool = False,
    ) -> None:
        rule = spec.rule
        self.spec = spec
        self.rule = rule
        self.life = life
        self.kind: AlertKind = spec.kind
        self._test = spec.test
        self._event = spec.event
        self._hysteresis = rule.hysteresis
        self._confirm_ticks = rule.confirm_ticks
        self._confirm_ns = seconds_to_ns(rule.confirm_seconds)
        self._cooldown_ns = seconds_to_ns(rule.cooldown_seconds)
        self._expires_ns = _END_OF_TIME if rule.expires_ns is None else rule.expires_ns
        self.may_expire = rule.expires_ns is not None
        self._session = None if rule.session == "any" else session
        # A bar close (at its end) belongs to the session its bar started in.
        self._session_shift = 1 if on_bars else 0
        self._source = None if spec.source is None else resolve(spec.source)
        self._level, self._level_value = _operand(spec.level, resolve)
        self._low, self._low_value = _operand(spec.low, resolve)
        self._high, self._high_value = _operand(spec.high, resolve)
        self._move_percent = spec.percent
        self._move_amount = spec.amount
        self._window_low = self._window_high = None
        if spec.window is not None:
            self._window_low = resolve(Indicator(name="low", span=spec.window))
            self._window_high = resolve(Indicator(name="high", span=spec.window))
        volume = rule.volume
        self._volume_ratio = 0.0
        self._volume_average: Value | None = None
        self._volume_now: Callable[[], float] | None = None
        if volume is not None and volume_of is not None:
            self._volume_ratio = volume.ratio
            self._volume_average = resolve(
                Indicator(name="sma_volume", span=volume.bar, period=volume.period)
            )
            self._volume_now = volume_of(volume.bar)
        # A level of the price, fixed or moving: the quiet interval can be known, of the
        # price (fixed) or of its distance from the level (moving_level, read by the engine).
        plain = spec.test in (BELOW, ABOVE) and self._source is None
        self._fixed = plain and self._level_value is None
        self.moving_level = self._level_value if plain else None
        self.level = self._level
        self._armed = not self._event
        self._run_count = 0
        self._run_start_ns = 0
        self._last_fire_ns = _NEVER
        self.quiet_low = -_INF
        self.quiet_high = _INF
        self.update_quiet()

    def step(self, price: float, ts_ns: int) -> bool:
        """Advance by one price at ``ts_ns``; return ``True`` if the rule fires on it."""
        life = self.life
        if life.inert:
            return False
        if ts_ns >= self._expires_ns:
            life.expire()
            return False
        if self._session is not None and not self._session.contains(ts_ns - self._session_shift):
            return False
        x = price if self._source is None else self._source.value
        test = self._test
        if test <= ABOVE:  # BELOW or ABOVE
            level = self._level if self._level_value is None else self._level_value.value
            if x != x or level != level:
                return False  # not ready
            self.level = level
            if test == BELOW:
                beyond = x < level
                safe = x >= level + self._hysteresis
            else:
                beyond = x > level
                safe = x <= level - self._hysteresis
        elif test == INSIDE:
            low = self._low if self._low_value is None else self._low_value.value
            high = self._high if self._high_value is None else self._high_value.value
            if x != x or low != low or high != high:
                return False
            beyond = low <= x <= high
            safe = x < low - self._hysteresis or x > high + self._hysteresis
            self.level = low if x - low <= high - x else high
        else:
            window = self._window_low if test == UP else self._window_high
            assert window is not None
            base = window.value
            if base != base:
                return False
            move = x - base if test == UP else base - x
            threshold = (
                self._move_amount if self._move_percent is None else base * self._move_percent / 100
            )
            assert threshold is not None
            beyond = move >= threshold
            safe = move < threshold - self._hysteresis
            self.level = base
        if beyond:
            if not self._armed:
                return False
            if self._run_count == 0:
                self._run_start_ns = ts_ns
            self._run_count += 1
            if (
                self._run_count >= self._confirm_ticks
                and ts_ns - self._run_start_ns >= self._confirm_ns
                and ts_ns - self._last_fire_ns >= self._cooldown_ns
                and self._allowed(ts_ns)
            ):
                if self._event:
                    self._armed = False
                    self._run_count = 0
                self._last_fire_ns = ts_ns
                life.fired(ts_ns)
                self.update_quiet()
                return True
            if self._run_count == 1:
                self.update_quiet()
            return False
        if self._run_count:
            self._run_count = 0
            self.update_quiet()
        if safe and not self._armed:
            self._armed = True
            self.update_quiet()
        return False

    def _allowed(self, ts_ns: int) -> bool:
        """The frequency and the volume confirmation, at a tick that would fire."""
        life = self.life
        if life.per_bar and ts_ns - ts_ns % life.bar_ns == life.last_bar:
            return False
        if self._volume_now is not None and self._volume_average is not None:
            average = self._volume_average.value
            if average != average or not self._volume_now() > self._volume_ratio * average:
                return False
        return True

    @property
    def key(self) -> str:
        """Its checkpoint key (see :func:`watch_key`)."""
        return watch_key(self.spec)

    def reset(self) -> None:
        """Start afresh, as a new watch (a rule resumed)."""
        self._armed = not self._event
        self._run_count = 0
        self._run_start_ns = 0
        self._last_fire_ns = _NEVER
        self.update_quiet()

    def state(self) -> list[int]:
        """What it keeps, for a checkpoint: armed, the run's length and start, the last firing."""
        return [int(self._armed), self._run_count, self._run_start_ns, self._last_fire_ns]

    def restore(self, state: list[int]) -> None:
        """Take back what :meth:`state` gave."""
        armed, self._run_count, self._run_start_ns, self._last_fire_ns = state[:4]
        self._armed = bool(armed)
        self.update_quiet()

    def alert(self, price: float, ts_ns: int) -> AlertEvent:
        """The event for a firing at ``price`` and ``ts_ns``."""
        rule = self.rule
        symbol = rule.symbol
        basis = self.spec.basis
        if self._source is not None and basis is not None:
            # What the indicator compared was: 'rsi(14, "5m") 71.20'.
            named = str(self.spec.source)
            basis = basis.replace(named, f"{named} {self._source.value:.2f}", 1)
        return AlertEvent(
            id=alert_id(
                rule=rule.id,
                kind=self.kind,
                level=self.level,
                symbol=symbol,
                ts_ns=ts_ns,
                price=price,
            ),
            rule=rule.id,
            symbol=symbol,
            kind=self.kind,
            level=self.level,
            price=price,
            ts_ns=ts_ns,
            trigger=rule.trigger,
            bar=rule.bar if rule.trigger == "bar_close" else None,
            basis=basis,
            owner=rule.owner,
        )

    def update_quiet(self) -> None:
        if self.life.inert:
            self.quiet_low, self.quiet_high = -_INF, _INF
            return
        if not self._fixed and self.moving_level is None:
            self.quiet_low, self.quiet_high = _INF, -_INF  # every price matters
            return
        below = self._test == BELOW
        level = 0.0 if self.moving_level is not None else self._level
        if self._armed:
            if self._run_count:
                # Counting a run: every price matters.
                self.quiet_low, self.quiet_high = _INF, -_INF
            elif below:
                self.quiet_low, self.quiet_high = level, _INF
            else:
                self.quiet_low, self.quiet_high = -_INF, level
        elif below:
            # Unarmed: only a price that arms can change anything.
            safe_at = level + self._hysteresis
            self.quiet_low, self.quiet_high = -_INF, math.nextafter(safe_at, -_INF)
        else:
            safe_at = level - self._hysteresis
            self.quiet_low, self.quiet_high = math.nextafter(safe_at, _INF), _INF


def _operand(operand: Operand | None, resolve: Resolve) -> tuple[float, Value | None]:
    if isinstance(operand, Indicator):
        return math.nan, resolve(operand)
    return (math.nan if operand is None else operand), None


@functools.lru_cache(maxsize=1 << 16)
def duration_ns(text: str) -> int:
    return parse_duration(text)


@functools.lru_cache(maxsize=1 << 16)
def watch_key(spec: WatchSpec) -> str:
    """A short, stable name of every field of a watch: checkpoints keep its state by it.

    A rule changed in any field (its level, its confirmation) is another rule,
    and starts afresh, as ``RuleEngine.set_rules`` treats it live. A level
    rule's key is what it was before rules had conditions, so its state
    survives the upgrade.
    """
    rule = spec.rule
    if isinstance(rule, LevelRule):
        fields = [
            rule.id,
            rule.symbol,
            repr(rule.level),
            rule.direction,
            str(rule.confirm_ticks),
            repr(rule.confirm_seconds),
            repr(rule.hysteresis),
            repr(rule.cooldown_seconds),
            rule.trigger,
            rule.bar or "",
        ]
        if rule.lifecycle != _DEFAULT_LIFECYCLE:
            fields.append(repr(rule.lifecycle))
    else:
        fields = [repr(rule), str(spec.test), spec.kind]
    return hashlib.blake2b("\x1f".join(fields).encode(), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def rule_key(rule: Rule) -> str:
    """A stable name of every field of ``rule``: its lifecycle's checkpoint key."""
    return hashlib.blake2b(repr(rule).encode(), digest_size=8).hexdigest()


_DEFAULT_LIFECYCLE = LevelRule(id="x", symbol="X", level=1.0, direction="below").lifecycle
