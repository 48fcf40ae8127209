"""The level-rule contract, clause by clause, through the engine's public API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from service.models import Direction
from service.rules import RuleEngine
from tests.builders import at, level_rule, tick


def fires(
    prices: Sequence[float | tuple[float, float]],
    level: float = 255.0,
    direction: Direction = "below",
    **settings: Any,
) -> list[int]:
    """Indices of the ticks on which one level rule fires.

    Each price is either a price (its tick comes one second after the previous
    one) or a ``(price, seconds after T0)`` pair.
    """
    engine = RuleEngine([level_rule(level, direction, **settings)])
    fired = []
    for index, item in enumerate(prices):
        price, seconds = item if isinstance(item, tuple) else (item, float(index))
        if engine.on_tick(tick(price, seconds)):
            fired.append(index)
    return fired


# --- beyond is strict ------------------------------------------------------


def test_below_rule_when_price_equals_level_does_not_fire() -> None:
    assert fires([256.0, 255.0, 255.0]) == []


def test_below_rule_when_price_just_under_level_fires() -> None:
    assert fires([256.0, 254.99]) == [1]


def test_above_rule_when_price_equals_level_does_not_fire() -> None:
    assert fires([264.0, 265.0, 265.0], level=265.0, direction="above") == []


def test_above_rule_when_price_just_over_level_fires() -> None:
    assert fires([264.0, 265.01], level=265.0, direction="above") == [1]


# --- arming ------------------------------------------------------------------


def test_rule_when_first_tick_is_already_beyond_does_not_fire_until_armed() -> None:
    # Starts unarmed: a stream that opens below the level is no break.
    assert fires([254.0, 253.0, 252.0]) == []


def test_rule_when_price_crosses_back_and_breaks_again_fires_after_arming() -> None:
    assert fires([254.0, 256.0, 254.0]) == [2]


def test_below_rule_with_hysteresis_arms_exactly_at_level_plus_hysteresis() -> None:
    assert fires([255.5, 254.0], hysteresis=0.5) == [1]


def test_below_rule_with_hysteresis_when_price_stays_in_dead_band_does_not_arm() -> None:
    assert fires([255.49, 254.0, 255.3, 254.0], hysteresis=0.5) == []


def test_above_rule_with_hysteresis_arms_exactly_at_level_minus_hysteresis() -> None:
    assert fires([264.5, 266.0], level=265.0, direction="above", hysteresis=0.5) == [1]
    assert fires([264.51, 266.0], level=265.0, direction="above", hysteresis=0.5) == []


def test_rule_when_it_fires_disarms_until_price_returns_past_hysteresis() -> None:
    prices = [256.0, 254.0, 253.0, 255.2, 254.0, 255.5, 254.5]
    # fires at 1; 255.2 is inside the 0.5 dead band, so 254.0 does not fire; 255.5 re-arms.
    assert fires(prices, hysteresis=0.5) == [1, 6]


# --- runs and confirm_ticks ------------------------------------------------------


def test_rule_with_confirm_ticks_fires_on_the_nth_consecutive_tick_beyond() -> None:
    assert fires([256.0, 254.0, 254.5, 254.9, 253.0], confirm_ticks=3) == [3]


def test_rule_with_confirm_ticks_when_a_tick_is_not_beyond_restarts_the_run() -> None:
    # 255.0 is not beyond (strict), so it ends the run of two.
    prices = [256.0, 254.0, 254.0, 255.0, 254.0, 254.0, 254.0]
    assert fires(prices, confirm_ticks=3) == [6]


def test_rule_with_confirm_ticks_when_run_started_before_arming_does_not_count_it() -> None:
    # Ticks beyond while unarmed are no run: arming needs a tick that ends it.
    prices = [254.0, 254.0, 256.0, 254.0, 254.0]
    assert fires(prices, confirm_ticks=3) == []
    assert fires([*prices, 254.0], confirm_ticks=3) == [5]


# --- confirm_seconds -----------------------------------------------------------------


def test_rule_with_confirm_seconds_fires_on_first_tick_that_long_after_run_start() -> None:
    prices = [(256.0, 0), (254.0, 10), (254.0, 12), (254.0, 14.999), (254.0, 15), (254.0, 16)]
    assert fires(prices, confirm_seconds=5) == [4]


def test_rule_with_confirm_seconds_measures_from_the_first_tick_of_the_current_run() -> None:
    prices = [(256.0, 0), (254.0, 1), (256.0, 4), (254.0, 5), (254.0, 8), (254.0, 10)]
    # The run that starts at 1 s ends at 4 s; the one that starts at 5 s is 5 s old at 10 s.
    assert fires(prices, confirm_seconds=5) == [5]


def test_rule_with_confirm_ticks_and_seconds_needs_both() -> None:
    prices = [(256.0, 0), (254.0, 1), (254.0, 7), (254.0, 8)]
    assert fires(prices, confirm_ticks=3, confirm_seconds=5) == [3]
    prices = [(256.0, 0), (254.0, 1), (254.0, 2), (254.0, 3), (254.0, 6)]
    assert fires(prices, confirm_ticks=3, confirm_seconds=5) == [4]


# --- cooldown ----------------------------------------------------------------------------


def test_rule_with_cooldown_when_rearmed_inside_cooldown_waits_for_it_to_end() -> None:
    prices = [(256.0, 0), (254.0, 10), (256.0, 20), (254.0, 30), (254.0, 69.999), (254.0, 70)]
    assert fires(prices, cooldown_seconds=60) == [1, 5]


def test_rule_with_cooldown_fires_again_exactly_when_cooldown_ends() -> None:
    prices = [(256.0, 0), (254.0, 10), (256.0, 20), (254.0, 70)]
    assert fires(prices, cooldown_seconds=60) == [1, 3]


def test_rule_with_cooldown_still_needs_rearming_after_cooldown() -> None:
    prices = [(256.0, 0), (254.0, 10), (254.0, 100), (254.0, 200)]
    assert fires(prices, cooldown_seconds=60) == [1]


# --- the event --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "level", "prices", "kind"),
    [
        ("below", 255.0, [256.1, 254.6], "break_below"),
        ("above", 265.0, [264.2, 265.4], "break_above"),
    ],
)
def test_event_carries_the_firing_tick_price_and_time(
    direction: Direction, level: float, prices: list[float], kind: str
) -> None:
    engine = RuleEngine([level_rule(level, direction, rule_id="iwm-level")])
    assert engine.on_tick(tick(prices[0], 0)) == []
    (event,) = engine.on_tick(tick(prices[1], 14))
    assert event.rule == "iwm-level"
    assert event.symbol == "IWM"
    assert event.kind == kind
    assert event.level == level
    assert event.price == prices[1]
    assert event.ts_ns == at(14)
    assert event.at == "2026-02-02T14:30:14.000Z"
    assert event.trigger == "tick"


def test_event_id_when_same_rule_fires_on_same_tick_is_the_same() -> None:
    def replay() -> str:
        engine = RuleEngine([level_rule()])
        engine.on_tick(tick(256.0, 0))
        (event,) = engine.on_tick(tick(254.6, 14))
        return event.id

    assert replay() == replay()


def test_rule_on_other_symbol_is_not_affected() -> None:
    engine = RuleEngine([level_rule(symbol="IWM")])
    assert engine.on_tick(tick(256.0, 0, symbol="SPY")) == []
    assert engine.on_tick(tick(254.0, 1, symbol="SPY")) == []
    assert engine.on_tick(tick(254.0, 2, symbol="IWM")) == []  # IWM itself never armed
