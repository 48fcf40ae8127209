"""The engine: time order, several rules, ranges, bar closes, windows, and its purity."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import service.errors
import service.models
import service.rules
import service.timestamps
from service.errors import TickError, TickOutOfOrderError
from service.models import RangeRule, Tick
from service.rules import RuleEngine
from tests.builders import at, level_rule, tick

# --- time order ----------------------------------------------------------------


def test_engine_when_tick_is_older_than_last_of_its_symbol_rejects_it() -> None:
    engine = RuleEngine([level_rule()])
    engine.on_tick(tick(256.0, 10))
    with pytest.raises(TickOutOfOrderError) as caught:
        engine.on_tick(tick(254.0, 9))
    assert caught.value.reason == "out_of_order"
    assert caught.value.symbol == "IWM"
    assert "2026-02-02T14:30:09.000Z" in caught.value.detail


def test_engine_when_tick_rejected_changes_no_state() -> None:
    engine = RuleEngine([level_rule()])
    engine.on_tick(tick(256.0, 10))
    with pytest.raises(TickOutOfOrderError):
        engine.on_tick(tick(254.0, 9))
    # The late 254.0 neither fired nor moved time back: the rule is still armed at 10 s.
    (event,) = engine.on_tick(tick(254.0, 10.5))
    assert event.ts_ns == at(10.5)


def test_engine_when_same_time_and_another_price_rejects_it_and_keeps_the_first() -> None:
    engine = RuleEngine([level_rule()])
    engine.on_tick(tick(256.0, 10))
    with pytest.raises(TickError) as caught:
        engine.on_tick(tick(254.0, 10))
    assert caught.value.reason == "same_time"
    assert "254.00" in caught.value.detail
    assert "256.00" in caught.value.detail
    # Nothing changed: the rule is armed, and the next instant breaks it.
    (event,) = engine.on_tick(tick(254.0, 11))
    assert event.ts_ns == at(11)


def test_engine_when_same_time_and_same_price_accepts_it() -> None:
    engine = RuleEngine([level_rule(confirm_ticks=2)])
    engine.on_tick(tick(256.0, 9))
    assert engine.on_tick(tick(254.0, 10)) == []
    # A second print at the instant and price: one more tick of the run.
    (event,) = engine.on_tick(tick(254.0, 10))
    assert event.ts_ns == at(10)


def test_engine_with_same_time_accept_takes_both_in_arrival_order() -> None:
    engine = RuleEngine([level_rule()], same_time="accept")
    engine.on_tick(tick(256.0, 10))
    (event,) = engine.on_tick(tick(254.0, 10))
    assert event.price == 254.0


def test_engine_checks_time_order_per_symbol() -> None:
    engine = RuleEngine([level_rule(4_900.0, symbol="SPX")])
    engine.on_tick(tick(256.0, 10, symbol="IWM"))
    engine.on_tick(tick(4_950.0, 4, symbol="SPX"))
    # Older than IWM's tick, but SPX's own time goes forward: evaluated, and it fires.
    (event,) = engine.on_tick(tick(4_850.0, 5, symbol="SPX"))
    assert (event.symbol, event.ts_ns) == ("SPX", at(5))


def test_on_ticks_when_a_tick_is_out_of_order_reports_it_and_goes_on() -> None:
    engine = RuleEngine([level_rule()])
    rejected: list[Tick] = []
    late = tick(250.0, 1)
    alerts = engine.on_ticks(
        [tick(256.0, 5), late, tick(254.0, 6)], on_reject=lambda t, _e: rejected.append(t)
    )
    assert rejected == [late]
    assert [a.price for a in alerts] == [254.0]


def test_on_ticks_reports_each_rejection_with_its_reason() -> None:
    engine = RuleEngine([level_rule()], price_band=0.2)
    reasons: list[tuple[float, str]] = []
    engine.on_ticks(
        [tick(256.0, 5), tick(255.5, 5), tick(1.0, 6), tick(250.0, 4), tick(254.0, 7)],
        on_reject=lambda t, e: reasons.append((t.price, e.reason)),
    )
    assert reasons == [(255.5, "same_time"), (1.0, "price_implausible"), (250.0, "out_of_order")]


# --- the price band ----------------------------------------------------------------


def test_engine_with_a_price_band_ignores_a_bad_print_between_good_ticks() -> None:
    engine = RuleEngine([level_rule()], price_band=0.2)
    engine.on_tick(tick(256.0, 0))
    with pytest.raises(TickError) as caught:
        engine.on_tick(tick(1.0, 1))
    assert caught.value.reason == "price_implausible"
    assert "204.80..307.20" in caught.value.detail
    # The rule stayed armed: the real break fires.
    (event,) = engine.on_tick(tick(254.9, 2))
    assert event.price == 254.9


def test_engine_with_a_price_band_follows_a_real_gap_after_rebase_ticks() -> None:
    engine = RuleEngine([level_rule(100.0)], price_band=0.2, rebase_ticks=3)
    engine.on_tick(tick(130.0, 0))
    for second in (1, 2):
        with pytest.raises(TickError):
            engine.on_tick(tick(95.0 + second / 10, second))
    # The third price that agrees is taken, and it is below 100: the gap's alert.
    (event,) = engine.on_tick(tick(95.3, 3))
    assert event.price == 95.3


def test_engine_without_a_price_band_accepts_any_valid_price() -> None:
    engine = RuleEngine([level_rule()])
    engine.on_tick(tick(256.0, 0))
    (event,) = engine.on_tick(tick(1.0, 1))
    assert event.price == 1.0


# --- several rules ---------------------------------------------------------------


def test_engine_with_several_rules_on_one_tick_reports_them_in_config_order() -> None:
    engine = RuleEngine(
        [
            level_rule(255.0, rule_id="below-255"),
            level_rule(250.0, rule_id="below-250"),
            level_rule(265.0, "above", rule_id="above-265"),
        ]
    )
    engine.on_tick(tick(260.0, 0))
    fired = engine.on_tick(tick(249.0, 1))  # a gap down through both supports
    assert [a.rule for a in fired] == ["below-255", "below-250"]
    assert len({a.id for a in fired}) == 2


def test_engine_same_tick_different_rules_get_different_ids() -> None:
    engine = RuleEngine([level_rule(255.0, rule_id="a"), level_rule(255.0, rule_id="b")])
    engine.on_tick(tick(256.0, 0))
    first, second = engine.on_tick(tick(254.0, 1))
    assert first.id != second.id


# --- range rules -----------------------------------------------------------------


def test_range_rule_fires_breakdown_below_low_and_breakout_above_high() -> None:
    engine = RuleEngine([RangeRule(id="iwm-range", symbol="IWM", low=255.0, high=265.0)])
    assert engine.on_tick(tick(259.6, 0)) == []  # inside the range: both sides arm
    (up,) = engine.on_tick(tick(265.2, 1))
    assert (up.rule, up.kind, up.level) == ("iwm-range", "break_above", 265.0)
    assert engine.on_tick(tick(260.0, 2)) == []
    (down,) = engine.on_tick(tick(254.8, 3))
    assert (down.rule, down.kind, down.level) == ("iwm-range", "break_below", 255.0)


def test_range_rule_sides_arm_and_cool_down_independently() -> None:
    rule = RangeRule(
        id="r", symbol="IWM", low=255.0, high=265.0, hysteresis=1.0, cooldown_seconds=60
    )
    engine = RuleEngine([rule])
    engine.on_tick(tick(260.0, 0))
    assert len(engine.on_tick(tick(265.5, 1))) == 1
    # The low side is still armed and its cooldown is its own.
    assert [a.kind for a in engine.on_tick(tick(254.0, 2))] == ["break_below"]


# --- bar-close rules ----------------------------------------------------------------


def bar_rule(**settings: object) -> object:
    return level_rule(255.0, trigger="bar_close", bar="1m", **settings)


def test_bar_close_rule_ignores_a_dip_inside_the_bar() -> None:
    engine = RuleEngine([bar_rule()])
    prices = [(256.0, 0), (254.0, 20), (255.5, 50), (256.0, 70), (256.0, 130)]
    fired = [a for p, s in prices for a in engine.on_tick(tick(p, s))]
    assert fired == []


def test_bar_close_rule_fires_when_a_bar_closes_beyond_the_level() -> None:
    engine = RuleEngine([bar_rule()])
    for price, seconds in [(256.0, 0), (256.5, 59), (255.5, 65), (254.7, 110)]:
        assert engine.on_tick(tick(price, seconds)) == []
    # The first tick of the next minute closes the 14:31 bar at 254.70.
    (event,) = engine.on_tick(tick(256.0, 121))
    assert event.trigger == "bar_close"
    assert event.bar == "1m"
    assert event.price == 254.7
    assert event.ts_ns == at(120)  # the bar's close time
    assert event.headline() == "IWM broke below 255.00 at 254.70 (1m close)"


def test_bar_close_rule_arms_on_a_close_on_the_safe_side() -> None:
    engine = RuleEngine([bar_rule(hysteresis=1.0)])
    # Closes: 255.5 (inside the hysteresis band: no arming), 254.0, 256.0 arms, 254.0 fires.
    closes = [255.5, 254.0, 256.0, 254.0]
    fired = []
    for minute, price in enumerate([*closes, 300.0]):
        fired += engine.on_tick(tick(price, minute * 60 + 30))
    assert [a.ts_ns for a in fired] == [at(4 * 60)]


def test_bar_close_rule_with_confirm_ticks_counts_bar_closes() -> None:
    engine = RuleEngine([bar_rule(confirm_ticks=2)])
    fired = []
    for minute, price in enumerate([256.0, 254.0, 254.0, 254.0, 254.0]):
        fired += engine.on_tick(tick(price, minute * 60 + 1))
    assert [a.ts_ns for a in fired] == [at(3 * 60)]  # the second consecutive close below


def test_bar_close_rules_build_bars_only_for_their_symbol() -> None:
    engine = RuleEngine([bar_rule()])
    engine.on_tick(tick(256.0, 0, symbol="IWM"))
    engine.on_tick(tick(4800.0, 0, symbol="SPX"))
    assert engine.current_bar("IWM", "1m") is not None
    assert engine.current_bar("SPX", "1m") is None


# --- bars ------------------------------------------------------------------------------


def test_engine_builds_bars_only_for_the_symbols_and_intervals_of_bar_close_rules() -> None:
    engine = RuleEngine([level_rule(trigger="bar_close", bar="1m"), level_rule(symbol="SPX")])
    for seconds in (0, 30):
        engine.on_tick(tick(256.0, seconds))
        engine.on_tick(tick(4900.0, seconds, symbol="SPX"))
    bar = engine.current_bar("IWM", "1m")
    assert bar is not None
    assert (bar.open, bar.close, bar.start_ns) == (256.0, 256.0, at(0))
    assert engine.current_bar("IWM", "5m") is None
    assert engine.current_bar("SPX", "1m") is None  # no rule of SPX closes on bars


def test_engine_drops_a_bar_no_rule_closes_on_any_more_and_keeps_the_others() -> None:
    five = level_rule(rule_id="five", trigger="bar_close", bar="5m")
    one = level_rule(rule_id="one", trigger="bar_close", bar="1m")
    engine = RuleEngine([five, one])
    engine.on_tick(tick(256.0, 0))
    engine.on_tick(tick(257.0, 10))
    engine.set_rules([five])
    assert engine.current_bar("IWM", "1m") is None
    kept = engine.current_bar("IWM", "5m")
    assert kept is not None
    assert (kept.open, kept.high) == (256.0, 257.0)  # its state, kept
    engine.set_rules([level_rule()])  # no bar-close rule left
    assert engine.current_bar("IWM", "5m") is None


# --- purity ---------------------------------------------------------------------------


def test_rules_package_when_imported_loads_no_io_or_clock_module() -> None:
    code = "import json, sys; import service.rules; print(json.dumps(sorted(sys.modules)))"
    before = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code])))
    baseline = set(json.loads(subprocess.check_output([sys.executable, "-c", before])))
    added = loaded - baseline
    forbidden = {
        "asyncio",
        "socket",
        "selectors",
        "ssl",
        "threading",
        "aiomqtt",
        "websockets",
        "aiohttp",
        "polars",
        "structlog",
        "sqlite3",
    }
    assert not (added & forbidden), f"service.rules imported {sorted(added & forbidden)}"
    assert "service.rules.engine" in added


CLOCK_READS = {
    "now",
    "utcnow",
    "today",
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
    "sleep",
}


def test_rules_package_and_what_it_imports_never_read_a_clock() -> None:
    # `time` is loaded by the interpreter itself, so the import test above cannot see it.
    package = Path(service.rules.__file__).parent
    files = [*package.glob("*.py")] + [
        Path(module.__file__ or "")
        for module in (service.models, service.timestamps, service.errors)
    ]
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names]
                module = getattr(node, "module", None)
                assert "time" not in names, f"{path.name} imports time"
                assert module != "time", f"{path.name} imports from time"
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                assert node.attr not in CLOCK_READS, f"{path.name}:{node.lineno} reads .{node.attr}"


def test_set_rules_keeps_the_state_of_rules_that_stay() -> None:
    engine = RuleEngine([level_rule(rule_id="kept")])
    engine.on_tick(tick(256, 0))  # arms "kept"
    engine.set_rules([level_rule(rule_id="kept"), level_rule(rule_id="new")])
    # "kept" is armed and fires; "new" starts unarmed, as at start-up, and does not.
    assert [alert.rule for alert in engine.on_tick(tick(254, 1))] == ["kept"]


def test_set_rules_drops_rules_that_go() -> None:
    engine = RuleEngine([level_rule(rule_id="gone")])
    engine.on_tick(tick(256, 0))
    engine.set_rules([])
    assert engine.on_tick(tick(254, 1)) == []
    assert engine.rules == ()


def test_set_rules_adds_bars_for_a_new_bar_close_rule() -> None:
    engine = RuleEngine()
    engine.on_tick(tick(256, 0))
    engine.set_rules([level_rule(rule_id="bar", trigger="bar_close", bar="1m")])
    engine.on_tick(tick(256, 61))  # opens a bar; its close arms the rule
    engine.on_tick(tick(254, 125))  # closes the 1:00 bar at 256: armed
    (alert,) = engine.on_tick(tick(254, 185))  # closes the 2:00 bar at 254
    assert (alert.rule, alert.trigger, alert.price) == ("bar", "bar_close", 254)


def test_set_rules_with_the_same_rules_changes_nothing() -> None:
    rules = [level_rule(confirm_ticks=2)]
    engine, twin = RuleEngine(rules), RuleEngine(rules)
    ticks = [tick(256, 0), tick(254, 1), tick(253, 2), tick(256, 3), tick(254, 4), tick(254, 5)]
    fired = []
    for index, item in enumerate(ticks):
        if index == 2:
            engine.set_rules(rules)
        fired += engine.on_tick(item)
    assert fired == twin.on_ticks(ticks)
