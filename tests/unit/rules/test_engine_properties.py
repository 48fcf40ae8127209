"""Property-based tests of the engine against a literal reading of the level-rule contract."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import TickOutOfOrderError
from service.models import LevelRule, RangeRule, Rule, Tick
from service.rules import RuleEngine
from service.timestamps import NS_PER_SECOND
from tests.helpers import T0_NS

SYMBOLS = ("IWM", "SPX")
# Prices cluster around the levels, so that streams cross them often.
PRICES = (97.0, 98.5, 99.0, 99.5, 99.75, 100.0, 100.25, 100.5, 101.0, 101.5, 103.0)
LEVELS = (99.0, 100.0, 101.0)


@st.composite
def rules(draw: st.DrawFn) -> list[Rule]:
    count = draw(st.integers(1, 4))
    made: list[Rule] = []
    for index in range(count):
        settings_ = {
            "id": f"r{index}",
            "symbol": draw(st.sampled_from(SYMBOLS)),
            "confirm_ticks": draw(st.integers(1, 4)),
            "confirm_seconds": draw(st.sampled_from((0.0, 0.5, 1.0, 3.0))),
            "hysteresis": draw(st.sampled_from((0.0, 0.25, 0.5, 1.0))),
            "cooldown_seconds": draw(st.sampled_from((0.0, 1.0, 5.0))),
        }
        if draw(st.booleans()):
            made.append(RangeRule(low=99.0, high=101.0, **settings_))
        else:
            made.append(
                LevelRule(
                    level=draw(st.sampled_from(LEVELS)),
                    direction=draw(st.sampled_from(("below", "above"))),
                    **settings_,
                )
            )
    return made


@st.composite
def tick_streams(draw: st.DrawFn, *, allow_out_of_order: bool = False) -> list[Tick]:
    """Ticks of SYMBOLS with non-decreasing times (ties included)."""
    size = draw(st.integers(0, 120))
    now = T0_NS
    ticks = []
    for _ in range(size):
        gap = draw(st.sampled_from((0.0, 0.25, 0.5, 1.0, 2.0)))
        now += round(gap * NS_PER_SECOND)
        ts = now
        if allow_out_of_order and draw(st.integers(0, 9)) == 0:
            ts = now - 3 * NS_PER_SECOND
        ticks.append(
            Tick(
                symbol=draw(st.sampled_from(SYMBOLS)), price=draw(st.sampled_from(PRICES)), ts_ns=ts
            )
        )
    return ticks


@dataclass
class ReferenceWatch:
    """The contract, read literally: runs are tracked even while unarmed."""

    rule: LevelRule
    armed: bool = False
    run_length: int = 0
    run_start: int = 0
    last_fire: int | None = None

    def step(self, price: float, ts: int) -> bool:
        # Durations compare in exact seconds: a float of nanoseconds since 1970
        # resolves only 256 ns, enough to misjudge "exactly one cooldown later".
        r = self.rule
        below = r.direction == "below"
        beyond = price < r.level if below else price > r.level
        safe = price >= r.level + r.hysteresis if below else price <= r.level - r.hysteresis
        if beyond:
            if self.run_length == 0:
                self.run_start = ts
            self.run_length += 1
        else:
            self.run_length = 0
        if safe:
            self.armed = True
        if (
            self.armed
            and beyond
            and self.run_length >= r.confirm_ticks
            and Fraction(ts - self.run_start, NS_PER_SECOND) >= Fraction(r.confirm_seconds)
            and (
                self.last_fire is None
                or Fraction(ts - self.last_fire, NS_PER_SECOND) >= Fraction(r.cooldown_seconds)
            )
        ):
            self.armed = False
            self.last_fire = ts
            return True
        return False


def reference_alerts(rule_list: list[Rule], ticks: list[Tick]) -> list[tuple[str, str, int, float]]:
    watches: list[ReferenceWatch] = []
    for rule in rule_list:
        for side in rule.sides() if isinstance(rule, RangeRule) else (rule,):
            watches.append(ReferenceWatch(side))
    out = []
    last_ts: dict[str, int] = {}
    for t in ticks:
        if t.ts_ns < last_ts.get(t.symbol, 0):
            continue  # rejected, changes nothing
        last_ts[t.symbol] = t.ts_ns
        for watch in watches:
            if watch.rule.symbol == t.symbol and watch.step(t.price, t.ts_ns):
                kind = "break_below" if watch.rule.direction == "below" else "break_above"
                out.append((watch.rule.id, kind, t.ts_ns, t.price))
    return out


def engine_alerts(rule_list: list[Rule], ticks: list[Tick]) -> list[tuple[str, str, int, float]]:
    engine = RuleEngine(rule_list)
    out = []
    for t in ticks:
        try:
            fired = engine.on_tick(t)
        except TickOutOfOrderError:
            continue
        out.extend((a.rule, a.kind, a.ts_ns, a.price) for a in fired)
    return out


@settings(max_examples=400)
@given(rules(), tick_streams(allow_out_of_order=True))
def test_engine_matches_the_literal_contract(rule_list: list[Rule], ticks: list[Tick]) -> None:
    # Also orders several rules per symbol: per tick, in config order, low side first.
    assert engine_alerts(rule_list, ticks) == reference_alerts(rule_list, ticks)


@settings(max_examples=300)
@given(rules(), tick_streams())
def test_engine_never_fires_twice_without_rearming(
    rule_list: list[Rule], ticks: list[Tick]
) -> None:
    engine = RuleEngine(rule_list)
    sides = {
        (side.id, side.direction): side
        for rule in rule_list
        for side in (rule.sides() if isinstance(rule, RangeRule) else (rule,))
    }
    safe_since_fire: dict[tuple[str, str], bool] = {}
    for t in ticks:
        for alert in engine.on_tick(t):
            key = (alert.rule, "below" if alert.kind == "break_below" else "above")
            assert safe_since_fire.get(key, True), f"{key} fired again without re-arming"
            safe_since_fire[key] = False
        # A tick on the safe side by the hysteresis re-arms the watches of its symbol.
        for key, side in sides.items():
            if side.symbol != t.symbol:
                continue
            if side.direction == "below":
                safe = t.price >= side.level + side.hysteresis
            else:
                safe = t.price <= side.level - side.hysteresis
            if safe:
                safe_since_fire[key] = True


@settings(max_examples=300)
@given(
    rules(),
    tick_streams(allow_out_of_order=True),
    st.lists(st.integers(0, 120), max_size=8),
)
def test_engine_gives_the_same_alerts_one_by_one_or_in_any_batch_split(
    rule_list: list[Rule], ticks: list[Tick], cuts: list[int]
) -> None:
    one_by_one = RuleEngine(rule_list)
    expected = []
    expected_rejects = []
    for t in ticks:
        try:
            expected.extend(one_by_one.on_tick(t))
        except TickOutOfOrderError:
            expected_rejects.append(t)

    batched = RuleEngine(rule_list)
    got = []
    rejects: list[Tick] = []
    bounds = sorted({0, len(ticks), *(c for c in cuts if c <= len(ticks))})
    for start, end in itertools.pairwise(bounds):
        got.extend(batched.on_ticks(ticks[start:end], on_reject=lambda t, _e: rejects.append(t)))
    assert got == expected
    assert rejects == expected_rejects
