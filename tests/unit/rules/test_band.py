"""The price band, clause by clause of its contract (service/rules/band.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.rules.band import PriceBand


def band(*prices: float, width: float = 0.2, rebase_ticks: int = 3) -> tuple[PriceBand, list[bool]]:
    """A band fed ``prices`` in order, and what it said of each."""
    made = PriceBand(width, rebase_ticks=rebase_ticks)
    return made, [made.admit(price) for price in prices]


def test_band_accepts_the_first_price_and_anchors_on_it() -> None:
    made, admitted = band(1.0)
    assert admitted == [True]
    assert made.anchor == 1.0


def test_band_accepts_prices_within_the_width_of_the_anchor_bounds_included() -> None:
    assert band(100.0, 80.0)[1] == [True, True]
    assert band(100.0, 120.0)[1] == [True, True]
    assert band(100.0, 90.0, 110.0, 100.0)[1] == [True, True, True, True]


def test_band_rejects_prices_beyond_the_width_of_the_anchor() -> None:
    _, admitted = band(100.0, 79.99, 120.01, 1.0, 1e12)
    assert admitted == [True, False, False, False, False]


def test_band_moves_the_anchor_to_a_price_more_than_half_the_width_away() -> None:
    made, _ = band(100.0, 110.0)
    assert made.anchor == 100.0  # exactly half the width: inside the zone
    made.admit(110.01)
    assert made.anchor == 110.01


def test_band_follows_a_steady_trend_step_by_step() -> None:
    # 8 % a tick, 30 ticks: ten times the price, never a rejection.
    prices = [100.0 * 1.08**step for step in range(30)]
    made, admitted = band(*prices)
    assert all(admitted)
    assert made.anchor is not None
    assert made.anchor > 800  # it lags the last price (931) by less than half the width


def test_band_after_rebase_ticks_rejected_prices_that_agree_accepts_the_last() -> None:
    made, admitted = band(100.0, 50.0, 52.0, 49.0)
    assert admitted == [True, False, False, True]
    assert made.anchor == 49.0


def test_band_counts_a_run_from_its_first_price() -> None:
    # 41 and 59 are both within 20 % of 50, the run's first, though not of each other.
    _, admitted = band(100.0, 50.0, 41.0, 59.0)
    assert admitted == [True, False, False, True]
    _, admitted = band(100.0, 50.0, 41.0, 61.0)
    assert admitted == [True, False, False, False]


def test_band_a_rejected_price_that_disagrees_starts_a_new_run() -> None:
    _, admitted = band(100.0, 50.0, 200.0, 201.0, 202.0)
    assert admitted == [True, False, False, False, True]


def test_band_an_accepted_price_ends_a_run() -> None:
    _, admitted = band(100.0, 50.0, 50.0, 100.0, 50.0, 50.0)
    assert admitted == [True, False, False, True, False, False]


def test_band_zone_is_empty_while_a_run_lasts_and_back_after_it() -> None:
    made, _ = band(100.0)
    zone = (made.zone_low, made.zone_high)
    assert zone == pytest.approx((90.0, 110.0))
    made.admit(50.0)
    assert made.zone_low > made.zone_high
    made.admit(101.0)
    assert (made.zone_low, made.zone_high) == zone


def test_band_low_high_before_any_price_is_unbounded() -> None:
    assert PriceBand(0.2, rebase_ticks=3).low_high() == (float("-inf"), float("inf"))


@pytest.mark.parametrize(("width", "rebase_ticks"), [(0.0, 3), (1.0, 3), (0.2, 1)])
def test_band_refuses_settings_outside_their_range(width: float, rebase_ticks: int) -> None:
    with pytest.raises(ValueError, match=r"must be|fraction"):
        PriceBand(width, rebase_ticks=rebase_ticks)


prices = st.floats(min_value=0.01, max_value=1e6)


@given(st.lists(prices, max_size=60), st.sampled_from((0.05, 0.2, 0.5)))
def test_band_always_accepts_a_move_of_at_most_half_the_width(
    walk: list[float], width: float
) -> None:
    made = PriceBand(width, rebase_ticks=3)
    last: float | None = None
    for price in walk:
        admitted = made.admit(price)
        if (
            last is not None
            and abs(price - last) <= last * width / 2 * 0.999
            and not made_run(made)
        ):
            assert admitted
        if admitted:
            last = price


def made_run(made: PriceBand) -> bool:
    """Whether a run of rejected prices lasts (its zone is then empty)."""
    return made.zone_low > made.zone_high


@given(st.lists(prices, min_size=1, max_size=60), st.sampled_from((0.05, 0.2)))
def test_band_accepted_prices_are_within_the_width_of_the_anchor_or_a_rebase(
    walk: list[float], width: float
) -> None:
    made = PriceBand(width, rebase_ticks=3)
    for price in walk:
        anchor = made.anchor
        if made.admit(price) and anchor is not None:
            within = anchor * (1 - width) <= price <= anchor * (1 + width)
            assert within or made.anchor == price
