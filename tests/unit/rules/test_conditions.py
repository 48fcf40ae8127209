"""docs/rules.md, sentence by sentence: each test name starts with the number it checks
(in lower case: ``test_l1_...`` checks [L1]).

Rules are read from alerts.toml text, as a user writes them, and driven
through the engine's public API.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from service.config import parse_config
from service.models import AlertEvent, Indicator, Rule, Tick
from service.rules import RuleEngine
from service.rules.sessions import Hours, Market
from tests.builders import T0_NS, at, tick

DOC = Path(__file__).parents[3] / "docs" / "rules.md"
MINUTE = 60.0

# A tick: a price one second after the previous one, or (price, seconds after T0[, volume]).
Step = float | tuple[float, float] | tuple[float, float, float]


def rules_of(body: str, symbol: str = "IWM") -> tuple[Rule, ...]:
    return parse_config(f'[[rules]]\nid = "r"\nsymbol = "{symbol}"\n{body}').rules


def engine_of(body: str, **settings: Any) -> RuleEngine:
    return RuleEngine(rules_of(body), **settings)


def ticks_of(steps: Sequence[Step], symbol: str = "IWM") -> list[Tick]:
    ticks = []
    for index, step in enumerate(steps):
        if isinstance(step, tuple):
            price, seconds, *rest = step
            ticks.append(tick(price, seconds, symbol=symbol, volume=rest[0] if rest else None))
        else:
            ticks.append(tick(step, float(index), symbol=symbol))
    return ticks


def run(engine: RuleEngine, steps: Sequence[Step]) -> list[tuple[int, AlertEvent]]:
    """(index of the tick, alert) for every alert the steps fire."""
    fired = []
    for index, one in enumerate(ticks_of(steps)):
        fired += [(index, alert) for alert in engine.on_tick(one)]
    return fired


def fires(body: str, steps: Sequence[Step], **settings: Any) -> list[int]:
    return [index for index, _ in run(engine_of(body, **settings), steps)]


def kinds(body: str, steps: Sequence[Step]) -> list[tuple[int, str]]:
    return [(index, alert.kind) for index, alert in run(engine_of(body), steps)]


BELOW_255 = 'condition = "cross_below"\nlevel = 255.0'


def test_every_numbered_sentence_of_the_contract_has_a_test() -> None:
    numbers = re.findall(r"\*\*\[([A-Z]+\d+)\]\*\*", DOC.read_text(encoding="utf-8"))
    assert len(numbers) == len(set(numbers)) > 30
    tested = {name.split("_")[1].upper() for name in globals() if name.startswith("test_")}
    assert [n for n in numbers if n not in tested] == []


# --- what a rule looks at --------------------------------------------------------


def test_t1_a_rejected_tick_is_not_seen() -> None:
    engine = engine_of(BELOW_255 + "\nconfirm_ticks = 2")
    rejected: list[Tick] = []
    alerts = engine.on_ticks(
        ticks_of([(256.0, 0.0), (254.0, 2.0), (253.0, 1.0), (254.5, 3.0)]),
        on_reject=lambda one, _error: rejected.append(one),
    )
    # The out-of-order 253 would have been the run's second tick: the 254.5 is.
    assert [r.price for r in rejected] == [253.0]
    assert [(a.price, a.ts_ns) for a in alerts] == [(254.5, at(3))]


def test_t2_the_subject_may_be_an_indicator() -> None:
    body = 'condition = "greater_than"\nsource = \'rsi(2, "1m")\'\nlevel = 70.0'
    # Closes rise bar after bar: the RSI is 100 once it has two changes (three bars).
    steps: list[Step] = [(100.0 + i, i * MINUTE) for i in range(5)]
    fired = run(engine_of(body), steps)
    assert [(index, alert.kind) for index, alert in fired] == [(3, "above")]
    assert fired[0][1].basis is not None
    assert "rsi(2" in fired[0][1].basis


# --- levels ----------------------------------------------------------------------


def test_l1_cross_below_is_strictly_below_and_safe_from_level_plus_hysteresis() -> None:
    assert fires(BELOW_255, [256.0, 255.0, 255.0]) == []
    assert fires(BELOW_255, [256.0, 254.99]) == [1]
    hysteresis = BELOW_255 + "\nhysteresis = 0.5"
    assert fires(hysteresis, [255.49, 254.0]) == []  # never safe: never armed
    assert fires(hysteresis, [255.5, 254.0]) == [1]


def test_l2_cross_above_is_strictly_above_and_safe_to_level_less_hysteresis() -> None:
    above = 'condition = "cross_above"\nlevel = 265.0\nhysteresis = 0.5'
    assert fires(above, [264.5, 265.0, 265.01]) == [2]
    assert fires(above, [264.51, 266.0]) == []


def test_l3_crossing_alerts_each_way_with_its_own_kind() -> None:
    body = 'condition = "crossing"\nlevel = 255.0'
    assert kinds(body, [256.0, 254.0, 256.0, 254.0]) == [
        (1, "break_below"),
        (2, "break_above"),
        (3, "break_below"),
    ]


def test_l4_less_than_and_greater_than_need_no_arming() -> None:
    assert kinds('condition = "less_than"\nlevel = 255.0', [254.0]) == [(0, "below")]
    assert kinds('condition = "greater_than"\nlevel = 255.0', [256.0]) == [(0, "above")]
    assert fires('condition = "less_than"\nlevel = 255.0', [255.0]) == []  # strictly


def test_l5_a_level_may_be_an_indicator() -> None:
    body = 'condition = "cross_above"\nlevel = \'sma(2, "1m")\''
    # Bars close at 100 and 102: the SMA is 101 from the third minute on.
    steps: list[Step] = [(100.0, 0.0), (102.0, 60.0), (100.5, 120.0), (101.5, 121.0)]
    fired = run(engine_of(body), steps)
    assert [(i, a.level, a.basis) for i, a in fired] == [(3, 101.0, 'sma(2, "1m")')]


# --- channels --------------------------------------------------------------------


def test_ch1_exit_channel_is_a_break_of_either_bound() -> None:
    body = 'condition = "exit_channel"\nlow = 250.0\nhigh = 260.0'
    assert kinds(body, [255.0, 249.0, 255.0, 261.0]) == [(1, "break_below"), (3, "break_above")]
    assert rules_of(body) == rules_of('type = "range"\nlow = 250.0\nhigh = 260.0')


def test_ch2_enter_channel_counts_the_bounds_inside_and_arms_outside_by_hysteresis() -> None:
    body = 'condition = "enter_channel"\nlow = 250.0\nhigh = 260.0'
    assert kinds(body, [245.0, 250.0]) == [(1, "enter_channel")]
    assert fires(body, [265.0, 260.0]) == [1]
    assert fires(body, [250.0, 255.0]) == []  # never outside: never armed
    hysteresis = body + "\nhysteresis = 1.0"
    assert fires(hysteresis, [249.0, 251.0]) == []  # not below low - hysteresis
    assert fires(hysteresis, [248.99, 251.0]) == [1]


def test_ch3_inside_channel_is_a_state() -> None:
    body = 'condition = "inside_channel"\nlow = 250.0\nhigh = 260.0\nfrequency = "every_time"'
    assert kinds(body, [255.0, 256.0, 261.0, 250.0]) == [
        (0, "inside_channel"),
        (1, "inside_channel"),
        (3, "inside_channel"),
    ]


def test_ch4_outside_channel_is_a_state_strictly_beyond_either_bound() -> None:
    body = 'condition = "outside_channel"\nlow = 250.0\nhigh = 260.0\nfrequency = "every_time"'
    assert fires(body, [260.0, 250.0, 260.01, 249.99, 255.0]) == [2, 3]


# --- moves -----------------------------------------------------------------------


def test_m1_moving_up_by_percent_or_amount_from_the_window_low() -> None:
    body = 'condition = "moving_up"\nwindow = "1m"\npercent = 2.0'
    steps: list[Step] = [(100.0, 0.0), (101.0, 10.0), (101.99, 20.0), (102.0, 30.0)]
    assert kinds(body, steps) == [(3, "moving_up")]
    # The low that left the window (more than a minute before) no longer counts.
    assert fires(body, [(100.0, 0.0), (101.0, 10.0), (102.0, 61.0)]) == []
    amount = 'condition = "moving_up"\nwindow = "1m"\namount = 1.5'
    assert fires(amount, [(100.0, 0.0), (101.0, 10.0), (101.5, 20.0)]) == [2]


def test_m2_moving_down_from_the_window_high() -> None:
    body = 'condition = "moving_down"\nwindow = "5m"\npercent = 1.0'
    assert kinds(body, [(200.0, 0.0), (199.0, 60.0), (198.0, 120.0)]) == [(2, "moving_down")]


def test_m3_a_move_is_an_event_that_arms_short_of_the_threshold_by_hysteresis() -> None:
    body = 'condition = "moving_up"\nwindow = "1m"\namount = 2.0\nhysteresis = 0.5'
    # The first ready tick arms (+0); +2 fires; +1.6 is not short enough to arm again,
    # +1.4 is; then +2 fires again.
    steps: list[Step] = [(100.0, 0.0), (100.0, 0.5), (102.0, 1.0), (101.6, 2.0), (102.0, 3.0)]
    assert fires(body, [*steps, (101.4, 4.0), (102.0, 5.0)]) == [2, 6]


def test_m4_a_moves_level_is_the_low_or_high_it_is_measured_from() -> None:
    body = 'condition = "moving_up"\nwindow = "1m"\npercent = 1.0'
    fired = run(engine_of(body), [(100.0, 0.0), (99.5, 1.0), (100.6, 2.0)])
    assert [(alert.level, alert.basis) for _, alert in fired] == [(99.5, "1 % in 1m")]


# --- events and states -----------------------------------------------------------


def test_e1_an_event_starts_unarmed_and_arms_on_a_safe_tick() -> None:
    assert fires(BELOW_255, [254.0, 256.0, 254.0]) == [2]


def test_e2_on_the_first_tick_nothing_crosses() -> None:
    assert fires(BELOW_255, [254.0, 253.0, 252.0]) == []
    assert fires('condition = "crossing"\nlevel = 255.0', [254.0]) == []


def test_e3_a_gap_is_a_crossing() -> None:
    assert fires(BELOW_255, [300.0, 100.0]) == [1]


def test_e4_a_price_at_the_level_is_not_beyond_and_arms() -> None:
    assert fires(BELOW_255, [255.0, 254.9]) == [1]
    assert fires(BELOW_255, [256.0, 255.0, 255.0]) == []


def test_e5_firing_disarms_an_event_until_a_safe_tick() -> None:
    assert fires(BELOW_255, [256.0, 254.0, 253.0, 254.0, 256.0, 254.0]) == [1, 5]


def test_e6_a_state_stays_armed_after_firing() -> None:
    body = 'condition = "less_than"\nlevel = 255.0\nfrequency = "every_time"'
    assert fires(body, [254.0, 253.0, 256.0, 254.0]) == [0, 1, 3]


# --- confirmation ----------------------------------------------------------------


def test_c1_a_run_is_ended_by_any_tick_not_beyond() -> None:
    body = BELOW_255 + "\nconfirm_ticks = 2"
    assert fires(body, [256.0, 254.0, 255.0, 254.0, 254.0]) == [4]


def test_c2_confirm_ticks_confirm_seconds_and_cooldown() -> None:
    seconds = BELOW_255 + "\nconfirm_seconds = 5"
    assert fires(seconds, [(256.0, 0.0), (254.0, 1.0), (254.0, 5.9), (254.0, 6.0)]) == [3]
    cooled = BELOW_255 + "\ncooldown_seconds = 60"
    steps: list[Step] = [(256.0, 0.0), (254.0, 1.0), (256.0, 2.0), (254.0, 30.0), (254.0, 61.0)]
    assert fires(cooled, steps) == [1, 4]  # the second break waits out the cooldown


def test_c3_a_volume_confirmation_needs_the_bars_volume_above_its_average() -> None:
    body = BELOW_255 + '\nconfirm_volume = \'volume("1m") > 2 * sma_volume(2, "1m")\''
    steps: list[Step] = [
        (256.0, 0.0, 100.0),  # minute 0: volume 100
        (254.0, 1.0, 900.0),  # beyond, but the average is not ready (no bar closed)
        (256.0, 60.0, 100.0),  # minute 0 had 1,000; minute 1: 100, so the average is 550
        (254.0, 120.0, 100.0),  # minute 2: 100 is not above 2 x 550
        (254.0, 121.0, 1000.0),  # the same run: 1,100 is not either (strictly above)
        (254.0, 122.0, 1.0),  # 1,101 is
    ]
    assert fires(body, steps) == [5]


# --- frequency -------------------------------------------------------------------


def test_f1_every_time_fires_on_each_new_break() -> None:
    assert fires(BELOW_255 + '\nfrequency = "every_time"', [256.0, 254.0, 256.0, 254.0]) == [1, 3]
    (rule,) = rules_of('condition = "moving_up"\nwindow = "1m"\npercent = 1.0')
    assert rule.frequency == "every_time"


def test_f2_once_fires_once_and_is_then_done() -> None:
    engine = engine_of(BELOW_255 + '\nfrequency = "once"')
    assert [i for i, _ in run(engine, [256.0, 254.0, 256.0, 254.0])] == [1]
    assert engine.status(engine.rules[0]) == "done"
    (state,) = rules_of('condition = "greater_than"\nlevel = 1.0')
    assert state.frequency == "once"


def test_f3_once_per_bar_waits_for_the_next_bar() -> None:
    body = 'condition = "crossing"\nlevel = 255.0\nfrequency = "once_per_bar"\nbar = "1m"'
    steps: list[Step] = [(256.0, 0.0), (254.0, 10.0), (256.0, 20.0), (257.0, 60.0)]
    # The rise at 20 s is in the bar of the fall's alert: it fires at the next bar's tick.
    assert kinds(body, steps) == [(1, "break_below"), (3, "break_above")]


def test_f4_once_per_bar_close_looks_at_closes() -> None:
    body = BELOW_255 + '\nfrequency = "once_per_bar_close"\nbar = "1m"'
    # Minute 0 closes at 256 (arms); minute 1 at 254.5, under the level though 254 came first.
    steps: list[Step] = [(256.0, 0.0), (254.0, 70.0), (254.5, 110.0), (256.0, 121.0)]
    fired = run(engine_of(body), steps)
    assert [(i, a.price, a.ts_ns, a.trigger) for i, a in fired] == [
        (3, 254.5, at(120), "bar_close")
    ]


def test_f5_a_rules_sides_share_its_frequency() -> None:
    body = 'condition = "crossing"\nlevel = 255.0\nfrequency = "once"'
    assert fires(body, [256.0, 254.0, 256.0, 254.0]) == [1]


# --- lifecycle -------------------------------------------------------------------


def test_lc1_an_expired_rule_fires_no_more() -> None:
    engine = engine_of(BELOW_255 + '\nexpires = "2026-02-02T14:30:10Z"')
    assert [i for i, _ in run(engine, [(256.0, 0.0), (254.0, 1.0), (256.0, 2.0)])] == [1]
    assert engine.status(engine.rules[0]) == "active"
    assert engine.on_tick(tick(254.0, 10.0)) == []  # at expires: no more
    assert engine.status(engine.rules[0]) == "expired"
    # A symbol that never ticks expires by the watermark (the newest tick time).
    other = engine_of(BELOW_255 + "\nexpires = 2026-02-02T14:30:10Z")
    other.on_tick(tick(100.0, 11.0, symbol="SPY"))
    assert other.status(other.rules[0]) == "expired"


def test_lc2_a_paused_rule_sees_nothing_and_resumes_afresh() -> None:
    engine = engine_of(BELOW_255)
    run(engine, [(256.0, 0.0)])
    assert engine.pause("r") is True
    assert engine.status(engine.rules[0]) == "paused"
    assert engine.on_tick(tick(254.0, 1.0)) == []
    engine.pause("r", paused=False)
    assert engine.on_tick(tick(253.0, 2.0)) == []  # resumed unarmed: no stale break
    engine.on_tick(tick(256.0, 3.0))
    assert len(engine.on_tick(tick(254.0, 4.0))) == 1
    once = engine_of(BELOW_255 + '\nfrequency = "once"')
    run(once, [256.0, 254.0])
    assert once.status(once.rules[0]) == "done"
    once.pause("r", paused=False)
    assert once.status(once.rules[0]) == "active"
    assert engine.pause("no-such-rule") is False


def test_lc3_paused_in_the_config_starts_paused() -> None:
    engine = engine_of(BELOW_255 + "\npaused = true")
    assert fires(BELOW_255 + "\npaused = true", [256.0, 254.0]) == []
    assert engine.status(engine.rules[0]) == "paused"


# --- indicators ------------------------------------------------------------------


def indicator_after(body: str, steps: Sequence[Step], indicator: Indicator) -> float | None:
    engine = engine_of(body)
    run(engine, steps)
    return engine.indicator("IWM", indicator)


SMA2 = Indicator(name="sma", span="1m", period=2)


def test_i1_an_indicator_of_bars_leaves_out_the_bar_in_progress() -> None:
    body = 'condition = "cross_above"\nlevel = \'sma(2, "1m")\''
    steps: list[Step] = [(10.0, 0.0), (20.0, 60.0), (90.0, 120.0)]  # the 90 bar is in progress
    assert indicator_after(body, steps, SMA2) == 15.0


@pytest.mark.parametrize(
    ("text", "indicator", "expected"),
    [
        ('sma(2, "1m")', SMA2, 15.0),
        ('ema(2, "1m")', Indicator(name="ema", span="1m", period=2), 10 + (20 - 10) * 2 / 3),
        # Changes +2 then -1, smoothed with alpha 1/2: gain 1.0, loss 0.5.
        ('rsi(2, "1m")', Indicator(name="rsi", span="1m", period=2), 100 - 100 / (1 + 2.0)),
    ],
)
def test_i2_the_definitions_of_sma_ema_and_rsi(
    text: str, indicator: Indicator, expected: float
) -> None:
    body = f"condition = \"cross_above\"\nlevel = '{text}'"
    closes = [10.0, 20.0] if indicator.name != "rsi" else [10.0, 12.0, 11.0]
    steps: list[Step] = [(c, i * MINUTE) for i, c in enumerate([*closes, 1.0])]
    value = indicator_after(body, steps, indicator)
    assert value == pytest.approx(expected)


def test_i2_sma_volume_is_the_mean_volume_of_the_last_bars() -> None:
    body = BELOW_255 + '\nconfirm_volume = \'volume("1m") > 1 * sma_volume(2, "1m")\''
    steps: list[Step] = [(256.0, 0.0, 100.0), (256.0, 1.0, 50.0), (256.0, 60.0, 30.0), (1, 120.0)]
    average = Indicator(name="sma_volume", span="1m", period=2)
    assert indicator_after(body, steps, average) == (150.0 + 30.0) / 2


def test_i3_before_an_indicator_is_ready_the_rule_ignores_the_tick() -> None:
    body = 'condition = "cross_above"\nlevel = \'sma(3, "1m")\''
    # Not ready for the first three minutes: the low ticks there do not arm.
    steps: list[Step] = [(10.0, 0.0), (10.0, 60.0), (10.0, 120.0), (11.0, 121.0)]
    assert fires(body, steps) == []
    assert math.isnan(indicator_after(body, steps[:3], Indicator("sma", "1m", 3)) or 0.0)
    # Ready from minute 3 (SMA 10): 9 arms, 11 crosses.
    assert fires(body, [*steps[:3], (9.0, 180.0), (11.0, 181.0)]) == [4]


def test_i4_a_window_holds_the_earlier_ticks_of_its_span_not_the_tick_instant() -> None:
    body = 'condition = "cross_above"\nlevel = \'high("1m")\''
    high = Indicator(name="high", span="1m")
    assert indicator_after(body, [(10.0, 0.0)], high) is not None
    assert math.isnan(indicator_after(body, [(10.0, 0.0)], high) or 0.0)  # empty: not ready
    assert indicator_after(body, [(10.0, 0.0), (12.0, 30.0), (11.0, 60.0)], high) == 12.0
    # The 10 at 0 s is exactly one minute before 60 s: in. At 60.001 s it is out.
    assert indicator_after(body, [(12.0, 0.0), (10.0, 1.0), (11.0, 60.0)], high) == 12.0
    assert indicator_after(body, [(12.0, 0.0), (10.0, 1.0), (11.0, 60.001)], high) == 10.0


def test_i5_cross_above_the_rolling_high_is_a_breakout() -> None:
    body = 'condition = "cross_above"\nlevel = \'high("30m")\''
    steps: list[Step] = [(100.0, 0.0), (101.0, 60.0), (100.5, 120.0), (101.01, 180.0)]
    fired = run(engine_of(body), steps)
    assert [(i, a.level) for i, a in fired] == [(3, 101.0)]


def test_i6_an_interval_without_ticks_makes_no_bar() -> None:
    body = 'condition = "cross_above"\nlevel = \'sma(2, "1m")\''
    # Ticks in minutes 0, 5 and 9 only: two closed bars, 10 and 20.
    steps: list[Step] = [(10.0, 0.0), (20.0, 300.0), (30.0, 540.0)]
    assert indicator_after(body, steps, SMA2) == 15.0


# --- bars and the watermark ------------------------------------------------------


BAR_BELOW = BELOW_255 + '\nfrequency = "once_per_bar_close"\nbar = "1m"'


def test_w1_a_quiet_symbols_bar_closes_when_the_watermark_passes_its_end() -> None:
    engine = engine_of(BAR_BELOW, lateness_ns=1_000_000_000)
    engine.on_tick(tick(256.0, 0.0))
    engine.on_tick(tick(256.0, 60.0))  # minute 0 closes at 256: arms
    engine.on_tick(tick(254.0, 61.0))
    assert engine.on_tick(tick(500.0, 120.5, symbol="SPY")) == []  # 120.5 - 1 s < 120 s
    (alert,) = engine.on_tick(tick(500.0, 121.0, symbol="SPY"))
    assert (alert.symbol, alert.price, alert.ts_ns) == ("IWM", 254.0, at(120))
    # The clock the caller carries on does the same with no tick at all.
    again = engine_of(BAR_BELOW, lateness_ns=1_000_000_000)
    for one in ticks_of([(256.0, 0.0), (256.0, 60.0), (254.0, 61.0)]):
        again.on_tick(one)
    assert again.advance(at(120.9)) == []
    assert [a.ts_ns for a in again.advance(at(121.0))] == [at(120)]
    assert again.take_touched() == {"IWM"}


def test_w2_a_tick_of_a_closed_bar_is_late_for_bars_not_for_tick_rules() -> None:
    body = (
        BAR_BELOW
        + '\n[[rules]]\nid = "t"\nsymbol = "IWM"\ncondition = "cross_below"\nlevel = 250.0'
    )
    engine = RuleEngine(parse_config(f'[[rules]]\nid = "r"\nsymbol = "IWM"\n{body}').rules)
    for one in ticks_of([(256.0, 0.0), (256.0, 60.0), (254.0, 61.0)]):
        engine.on_tick(one)
    (closed,) = engine.advance(at(120.0))
    assert closed.price == 254.0
    late = engine.on_tick(tick(249.0, 119.0))  # in the minute already closed
    assert [a.rule for a in late] == ["t"]
    assert engine.current_bar("IWM", "1m") is None
    assert engine.late_ticks() == 1


def test_w3_alerts_of_bars_come_before_the_ticks_own() -> None:
    body = (
        BAR_BELOW
        + '\n[[rules]]\nid = "t"\nsymbol = "IWM"\ncondition = "cross_below"\nlevel = 250.0'
    )
    engine = RuleEngine(parse_config(f'[[rules]]\nid = "r"\nsymbol = "IWM"\n{body}').rules)
    for one in ticks_of([(256.0, 0.0), (256.0, 60.0), (254.0, 61.0)]):
        engine.on_tick(one)
    assert [a.rule for a in engine.on_tick(tick(249.0, 121.0))] == ["r", "t"]


# --- sessions --------------------------------------------------------------------


# T0 (14:30 UTC) is the open: regular hours 14:30 to 21:00, extended from 09:00.
REGULAR = Hours([(T0_NS, at(6.5 * 3600))])
EXTENDED = Hours([(at(-5.5 * 3600), at(10.5 * 3600))])
MARKET = Market("TEST", REGULAR, EXTENDED)


def session_fires(session: str, steps: Sequence[Step], extra: str = "") -> list[int]:
    body = BELOW_255 + f'\nsession = "{session}"' + extra
    return fires(body, steps, market_of=lambda _symbol: MARKET)


def test_s1_a_session_limits_the_ticks_a_rule_looks_at() -> None:
    pre_market: list[Step] = [(256.0, -3600.0), (254.0, -3599.0)]
    assert session_fires("regular", pre_market) == []
    assert session_fires("extended", pre_market) == [1]
    assert session_fires("any", [(256.0, -12 * 3600.0), (254.0, -12 * 3600.0 + 1)]) == [1]
    assert session_fires("regular", [(256.0, 0.0), (254.0, 1.0)]) == [1]


def test_s2_a_bar_close_belongs_to_the_session_its_bar_started_in() -> None:
    closing = '\nfrequency = "once_per_bar_close"\nbar = "1m"'
    last_minute = 6.5 * 3600 - 60  # 20:59, the regular session's last bar
    steps: list[Step] = [(256.0, last_minute - 60), (254.0, last_minute), (254.0, last_minute + 61)]
    assert session_fires("regular", steps, closing) == [2]  # the 20:59 bar, closed at 21:00
    after: list[Step] = [
        (256.0, last_minute),
        (254.0, last_minute + 60),
        (254.0, last_minute + 121),
    ]
    assert session_fires("regular", after, closing) == []  # the 21:00 bar is after hours


def test_s3_a_tick_outside_the_session_does_not_arm() -> None:
    assert session_fires("regular", [(256.0, -60.0), (254.0, 1.0)]) == []
