"""The simulator's random walk: repeatable, positive, and staying near its reference."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.streams.simulator import RandomWalk
from tests.builders import at


def test_same_seed_gives_the_same_ticks() -> None:
    first = RandomWalk([("IWM", 260.0), ("SPX", 4850.0)], volatility=0.001, seed=3)
    second = RandomWalk([("IWM", 260.0), ("SPX", 4850.0)], volatility=0.001, seed=3)
    assert [first.step(at(i)) for i in range(100)] == [second.step(at(i)) for i in range(100)]


def test_symbols_take_turns_and_ticks_carry_the_given_time() -> None:
    walk = RandomWalk([("IWM", 260.0), ("SPX", 4850.0)], volatility=0.001, seed=1)
    ticks = [walk.step(at(i)) for i in range(4)]
    assert [t.symbol for t in ticks] == ["IWM", "SPX", "IWM", "SPX"]
    assert [t.ts_ns for t in ticks] == [at(i) for i in range(4)]


def test_walk_wanders_around_its_reference_price() -> None:
    walk = RandomWalk([("IWM", 260.0)], volatility=0.0005, seed=9)
    prices = [walk.step(at(i)).price for i in range(20_000)]
    assert 255 < statistics.fmean(prices) < 265
    assert len({round(p, 2) for p in prices}) > 100  # it moves
    assert all(p == round(p, 2) for p in prices)  # to the cent


@given(
    st.floats(min_value=0.01, max_value=1e6),
    st.floats(min_value=0.0, max_value=0.099),
    st.integers(min_value=0, max_value=2**32),
)
def test_prices_stay_positive_whatever_the_volatility(
    reference: float, volatility: float, seed: int
) -> None:
    walk = RandomWalk([("X", reference)], volatility=volatility, seed=seed)
    assert all(walk.step(at(i)).price > 0 for i in range(200))


def test_walk_needs_a_symbol() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        RandomWalk([], volatility=0.001)
