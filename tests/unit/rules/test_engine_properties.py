"""Property-based tests of the engine against a literal reading of its contracts.

The level rules (``service/rules/levels.py``), what the engine accepts (time
order, one price per instant) and the price band (``service/rules/band.py``),
each read clause by clause into a plain model, with no fast path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import TickError
from service.models import LevelRule, RangeRule, Rule, Tick
from service.rules import RuleEngine
from service.timestamps import NS_PER_SECOND
from tests.builders import T0_NS

SYMBOLS = ("IWM", "SPX")
# Prices cluster around the levels, so that streams cross them often.
PRICES = (97.0, 98.5, 99.0, 99.5, 99.75, 100.0, 100.25, 100.5, 101.0, 101.5, 103.0)
LEVELS = (99.0, 100.0, 101.0)
# Bad prints and gaps, drawn now and then: far outside a 20 % band around PRICES.
OUTLIERS = (1.0, 60.0, 150.0, 1e9)


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
    """Ticks of SYMBOLS with non-decreasing times (ties included), a few of them outliers."""
    size = draw(st.integers(0, 120))
    now = T0_NS
    ticks = []
    for _ in range(size):
        gap = draw(st.sampled_from((0.0, 0.25, 0.5, 1.0, 2.0)))
        now += round(gap * NS_PER_SECOND)
        ts = now
        if allow_out_of_order and draw(st.integers(0, 9)) == 0:
            ts = now - 3 * NS_PER_SECOND
        outlier = draw(st.integers(0, 11)) == 0
        price = draw(st.sampled_from(OUTLIERS if outlier else PRICES))
        ticks.append(Tick(symbol=draw(st.sampled_from(SYMBOLS)), price=price, ts_ns=ts))
    return ticks


@dataclass(frozen=True)
class Admission:
    """What the engine accepts: the settings drawn for one example."""

    same_time: Literal["reject", "accept"] = "reject"
    band: float = 0.0
    rebase_ticks: int = 3

    def engine(self, rule_list: list[Rule]) -> RuleEngine:
        return RuleEngine(
            rule_list,
            same_time=self.same_time,
            price_band=self.band,
            rebase_ticks=self.rebase_ticks,
        )


admissions = st.builds(
    Admission,
    same_time=st.sampled_from(("reject", "accept")),
    band=st.sampled_from((0.0, 0.05, 0.2)),
    rebase_ticks=st.integers(2, 4),
)


@dataclass
class ReferenceBand:
    """The band's contract, read literally."""

    width: float
    rebase_ticks: int
    anchor: float | None = None
    run: list[float] | None = None

    def admit(self, price: float) -> bool:
        def near(anchor: float, width: float) -> bool:
            return abs(price - anchor) <= width * anchor

        if self.anchor is None or near(self.anchor, self.width):
            self.run = None
            if self.anchor is None or not near(self.anchor, self.width / 2):
                self.anchor = price
            return True
        if self.run and near(self.run[0], self.width):
            self.run.append(price)
        else:
            self.run = [price]
        if len(self.run) == self.rebase_ticks:
            self.run = None
            self.anchor = price
            return True
        return False


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


def reference_alerts(
    rule_list: list[Rule], ticks: list[Tick], admission: Admission = Admission()
) -> list[tuple[str, str, int, float]]:
    watches: list[ReferenceWatch] = []
    for rule in rule_list:
        for side in rule.sides() if isinstance(rule, RangeRule) else (rule,):
            watches.append(ReferenceWatch(side))
    out = []
    last: dict[str, tuple[int, float]] = {}
    bands: dict[str, ReferenceBand] = {}
    for t in ticks:
        if t.symbol in last:
            last_ts, last_price = last[t.symbol]
            if t.ts_ns < last_ts:
                continue  # rejected, changes nothing
            if t.ts_ns == last_ts and t.price != last_price and admission.same_time == "reject":
                continue
        if admission.band:
            band = bands.setdefault(t.symbol, ReferenceBand(admission.band, admission.rebase_ticks))
            if not band.admit(t.price):
                continue
        last[t.symbol] = (t.ts_ns, t.price)
        for watch in watches:
            if watch.rule.symbol == t.symbol and watch.step(t.price, t.ts_ns):
                kind = "break_below" if watch.rule.direction == "below" else "break_above"
                out.append((watch.rule.id, kind, t.ts_ns, t.price))
    return out


def engine_alerts(
    rule_list: list[Rule], ticks: list[Tick], admission: Admission = Admission()
) -> list[tuple[str, str, int, float]]:
    engine = admission.engine(rule_list)
    out = []
    for t in ticks:
        try:
            fired = engine.on_tick(t)
        except TickError:
            continue
        out.extend((a.rule, a.kind, a.ts_ns, a.price) for a in fired)
    return out


@settings(max_examples=600)
@given(rules(), tick_streams(allow_out_of_order=True), admissions)
def test_engine_matches_the_literal_contract(
    rule_list: list[Rule], ticks: list[Tick], admission: Admission
) -> None:
    # Also orders several rules per symbol: per tick, in config order, low side first.
    assert engine_alerts(rule_list, ticks, admission) == reference_alerts(
        rule_list, ticks, admission
    )


@st.composite
def clean_streams(draw: st.DrawFn) -> list[Tick]:
    """Good ticks: times strictly increasing, prices near the levels."""
    now = T0_NS
    ticks = []
    for _ in range(draw(st.integers(0, 80))):
        now += round(draw(st.sampled_from((0.25, 0.5, 1.0, 2.0))) * NS_PER_SECOND)
        symbol = draw(st.sampled_from(SYMBOLS))
        ticks.append(Tick(symbol=symbol, price=draw(st.sampled_from(PRICES)), ts_ns=now))
    return ticks


@settings(max_examples=300)
@given(rules(), clean_streams(), st.data())
def test_bad_prints_after_good_ticks_change_no_alert(
    rule_list: list[Rule], good: list[Tick], data: st.DataObject
) -> None:
    # After a good tick, a bad print: at the same time with another price, or an
    # outlier a moment later. One price per instant and the band make both invisible.
    admission = Admission(band=0.2)
    mixed: list[Tick] = []
    for t in good:
        mixed.append(t)
        if data.draw(st.booleans()):
            wild = data.draw(st.sampled_from((1.0, 1e9, t.price * 0.5, t.price * 2)))
            later = data.draw(st.sampled_from((0, NS_PER_SECOND // 10)))
            mixed.append(Tick(symbol=t.symbol, price=wild, ts_ns=t.ts_ns + later))
    assert engine_alerts(rule_list, mixed, admission) == engine_alerts(rule_list, good, admission)


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
        try:
            fired = engine.on_tick(t)
        except TickError:
            continue  # refused: it neither fires nor re-arms
        for alert in fired:
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
    admissions,
)
def test_engine_gives_the_same_alerts_one_by_one_or_in_any_batch_split(
    rule_list: list[Rule], ticks: list[Tick], cuts: list[int], admission: Admission
) -> None:
    one_by_one = admission.engine(rule_list)
    expected = []
    expected_rejects = []
    for t in ticks:
        try:
            expected.extend(one_by_one.on_tick(t))
        except TickError:
            expected_rejects.append(t)

    batched = admission.engine(rule_list)
    got = []
    rejects: list[Tick] = []
    bounds = sorted({0, len(ticks), *(c for c in cuts if c <= len(ticks))})
    for start, end in itertools.pairwise(bounds):
        got.extend(batched.on_ticks(ticks[start:end], on_reject=lambda t, _e: rejects.append(t)))
    assert got == expected
    assert rejects == expected_rejects
