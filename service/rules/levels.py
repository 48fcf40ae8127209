"""The level-break state machine: one :class:`LevelWatch` per rule and direction.

The semantics are a contract (``tests/unit/rules/test_levels.py`` checks each
clause, and a reference model in the property tests checks them together):

* a tick is *beyond* when ``price < level`` (below) or ``price > level``
  (above), strictly;
* the watch starts unarmed and arms on any tick on the safe side by at least
  the hysteresis: ``price >= level + hysteresis`` (below),
  ``price <= level - hysteresis`` (above);
* a *run* is the consecutive ticks that are beyond; any other tick ends it;
* it fires on the first tick at which it is armed, the run holds at least
  ``confirm_ticks`` ticks, the tick is at least ``confirm_seconds`` after the
  run's first tick, and at least ``cooldown_seconds`` after the last firing.
  Firing disarms it.

A run that starts while unarmed can never fire: arming needs a tick that is
not beyond, which ends the run. So an unarmed watch ignores beyond ticks.
"""

from __future__ import annotations

import hashlib
import math

from service.models import KIND_OF_DIRECTION, AlertEvent, AlertKind, LevelRule, alert_id
from service.timestamps import seconds_to_ns

_INF = math.inf
_NEVER = -(2**63)


class LevelWatch:
    """Mutable state of one level rule (one side of a range rule) on one symbol.

    Feed it prices in time order with :meth:`step`; it returns ``True`` when
    the rule fires on that price. :attr:`quiet_low` and :attr:`quiet_high`
    bound the prices that cannot change its state right now: the engine skips
    the call for them, which is what makes the common tick cheap.
    """

    __slots__ = (
        "_armed",
        "_below",
        "_confirm_ns",
        "_confirm_ticks",
        "_cooldown_ns",
        "_last_fire_ns",
        "_run_count",
        "_run_start_ns",
        "_safe_at",
        "key",
        "kind",
        "level",
        "quiet_high",
        "quiet_low",
        "rule",
    )

    def __init__(self, rule: LevelRule) -> None:
        self.rule = rule
        self.key = rule_key(rule)
        self.level = rule.level
        self.kind: AlertKind = KIND_OF_DIRECTION[rule.direction]
        self._below = rule.direction == "below"
        self._safe_at = (
            rule.level + rule.hysteresis if self._below else rule.level - rule.hysteresis
        )
        self._confirm_ticks = rule.confirm_ticks
        self._confirm_ns = seconds_to_ns(rule.confirm_seconds)
        self._cooldown_ns = seconds_to_ns(rule.cooldown_seconds)
        self._armed = False
        self._run_count = 0
        self._run_start_ns = 0
        self._last_fire_ns = _NEVER
        self.quiet_low = -_INF
        self.quiet_high = _INF
        self._update_quiet()

    def step(self, price: float, ts_ns: int) -> bool:
        """Advance by one price at ``ts_ns``; return ``True`` if the rule fires on it."""
        if self._below:
            beyond = price < self.level
            safe = price >= self._safe_at
        else:
            beyond = price > self.level
            safe = price <= self._safe_at
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
            ):
                self._armed = False
                self._run_count = 0
                self._last_fire_ns = ts_ns
                self._update_quiet()
                return True
            if self._run_count == 1:
                self._update_quiet()
            return False
        if self._run_count:
            self._run_count = 0
            self._update_quiet()
        if safe and not self._armed:
            self._armed = True
            self._update_quiet()
        return False

    def state(self) -> list[int]:
        """What it keeps, for a checkpoint: armed, the run's length and start, the last firing."""
        return [int(self._armed), self._run_count, self._run_start_ns, self._last_fire_ns]

    def restore(self, state: list[int]) -> None:
        """Take back what :meth:`state` gave."""
        armed, self._run_count, self._run_start_ns, self._last_fire_ns = state
        self._armed = bool(armed)
        self._update_quiet()

    def alert(self, price: float, ts_ns: int) -> AlertEvent:
        """The event for a firing at ``price`` and ``ts_ns``."""
        rule = self.rule
        symbol = rule.symbol
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
            bar=rule.bar,
        )

    def _update_quiet(self) -> None:
        if self._armed:
            if self._run_count:
                # Counting a run: every price matters.
                self.quiet_low, self.quiet_high = _INF, -_INF
            elif self._below:
                self.quiet_low, self.quiet_high = self.level, _INF
            else:
                self.quiet_low, self.quiet_high = -_INF, self.level
        elif self._below:
            # Unarmed: only a price that arms can change anything.
            self.quiet_low, self.quiet_high = -_INF, math.nextafter(self._safe_at, -_INF)
        else:
            self.quiet_low, self.quiet_high = math.nextafter(self._safe_at, _INF), _INF


def rule_key(rule: LevelRule) -> str:
    """A short, stable name of every field of ``rule``: checkpoints keep a watch's state by it.

    A rule changed in any field (its level, its confirmation) is another rule,
    and starts afresh, as ``RuleEngine.set_rules`` treats it live.
    """
    fields = (
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
    )
    return hashlib.blake2b("\x1f".join(fields).encode(), digest_size=8).hexdigest()
