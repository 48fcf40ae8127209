from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import TickError
from service.streams.decode import (
    MAX_PRICE,
    REJECTION_REASONS,
    check_not_ahead,
    make_tick,
    parse_tick,
)
from service.timestamps import NS_PER_SECOND

GOOD = {"symbol": "IWM", "price": 254.6, "ts": "2026-02-02T14:30:14.000Z", "volume": 100}


def test_parse_tick_reads_a_typical_message() -> None:
    tick = parse_tick(GOOD)
    assert (tick.symbol, tick.price, tick.at, tick.volume) == (
        "IWM",
        254.6,
        "2026-02-02T14:30:14.000Z",
        100.0,
    )
    assert tick.bid is None
    assert tick.ask is None


def test_parse_tick_normalises_symbol_and_reads_numeric_strings() -> None:
    tick = parse_tick(
        {"symbol": " btc-usd ", "price": "92500.5", "ts": "1770042614", "bid": "92500"}
    )
    assert (tick.symbol, tick.price, tick.bid) == ("BTC-USD", 92500.5, 92500.0)


def test_parse_tick_when_symbol_absent_uses_the_default() -> None:
    assert parse_tick({"price": 1.0, "ts": 1770042614}, default_symbol="iwm").symbol == "IWM"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"symbol": None}, "missing_symbol"),
        ({"symbol": ""}, "missing_symbol"),
        ({"symbol": "IW M"}, "bad_symbol"),
        ({"symbol": 42}, "bad_symbol"),
        ({"price": None}, "missing_price"),
        ({"price": "abc"}, "bad_price"),
        ({"price": True}, "bad_price"),
        ({"price": [1]}, "bad_price"),
        ({"price": float("nan")}, "price_not_finite"),
        ({"price": "NaN"}, "price_not_finite"),
        ({"price": "inf"}, "price_not_finite"),
        ({"price": 10**400}, "price_not_finite"),
        ({"price": 0}, "price_not_positive"),
        ({"price": -254.6}, "price_not_positive"),
        ({"ts": None}, "missing_ts"),
        ({"ts": "14:30"}, "bad_ts"),
        ({"ts": -1}, "bad_ts"),
        ({"volume": -1}, "bad_volume"),
        ({"volume": "lots"}, "bad_volume"),
        ({"volume": float("inf")}, "bad_volume"),
        ({"volume": 1e16}, "bad_volume"),
        ({"bid": 0}, "bad_bid"),
        ({"ask": -3}, "bad_ask"),
        ({"ask": 1e13}, "bad_ask"),
        ({"price": 1e308}, "price_out_of_range"),
        ({"price": "1e13"}, "price_out_of_range"),
    ],
)
def test_parse_tick_when_a_field_is_bad_rejects_with_its_reason(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(TickError) as caught:
        parse_tick({**GOOD, **change})
    assert caught.value.reason == reason
    assert reason in REJECTION_REASONS
    assert caught.value.detail


@pytest.mark.parametrize("raw", [None, [GOOD], "IWM 254.6", 254.6])
def test_parse_tick_when_not_an_object_rejects(raw: object) -> None:
    with pytest.raises(TickError, match="not_an_object"):
        parse_tick(raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["NaN", "-1", "1e999", "254.6", "2026-02-02T14:30:14Z", "IWM", ""]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children)
    ),
    max_leaves=6,
)


@given(
    st.dictionaries(
        st.sampled_from(["symbol", "price", "ts", "volume", "bid", "ask", "other"]), json_values
    )
    | json_values
)
def test_parse_tick_on_any_json_value_returns_a_valid_tick_or_raises_tick_error(
    raw: object,
) -> None:
    try:
        tick = parse_tick(raw)
    except TickError as error:
        reason = error.reason
        assert reason in REJECTION_REASONS
        return
    assert tick.symbol
    assert tick.symbol == tick.symbol.upper()
    assert math.isfinite(tick.price)
    assert 0 < tick.price <= MAX_PRICE
    assert tick.ts_ns > 0
    for optional in (tick.volume, tick.bid, tick.ask):
        assert optional is None or (math.isfinite(optional) and optional >= 0)


def test_make_tick_checks_fields_in_order_symbol_price_time() -> None:
    with pytest.raises(TickError, match="missing_symbol"):
        make_tick(symbol=None, price=None, ts=None)
    with pytest.raises(TickError, match="missing_price"):
        make_tick(symbol="IWM", price=None, ts=None)


@pytest.mark.parametrize(
    "price",
    ["1" * 1_000_000, 10**5000, -(10**5000), "x" * 1_000_000],
    ids=["inf", "big", "-big", "x"],
)
def test_parse_tick_when_price_is_huge_keeps_the_message_short(price: object) -> None:
    with pytest.raises(TickError) as caught:
        parse_tick({**GOOD, "price": price})
    assert len(str(caught.value)) < 200


def test_parse_tick_at_the_largest_price_accepts_it() -> None:
    assert parse_tick({**GOOD, "price": MAX_PRICE}).price == MAX_PRICE


def test_price_out_of_range_message_is_short_whatever_the_price() -> None:
    with pytest.raises(TickError) as caught:
        parse_tick({**GOOD, "price": 1.7976931348623157e308})
    assert caught.value.detail == "IWM price 1.79769e+308 is over 1e+12"


def test_check_not_ahead_when_within_the_tolerance_returns_the_tick() -> None:
    tick = parse_tick(GOOD)
    received = tick.ts_ns - 5 * NS_PER_SECOND
    assert check_not_ahead(tick, received_ns=received, max_ahead_ns=5 * NS_PER_SECOND) is tick


def test_check_not_ahead_when_past_the_tolerance_rejects_with_how_far() -> None:
    tick = parse_tick(GOOD)
    received = tick.ts_ns - 365 * 86_400 * NS_PER_SECOND
    with pytest.raises(TickError) as caught:
        check_not_ahead(tick, received_ns=received, max_ahead_ns=5 * NS_PER_SECOND)
    assert caught.value.reason == "future_ts"
    assert "31,536,000.0 s ahead" in caught.value.detail
    assert "max_future_seconds = 5" in caught.value.detail


@given(
    ahead_ns=st.integers(-(10**15), 10**15),
    tolerance_ns=st.integers(0, 10**12),
)
def test_check_not_ahead_rejects_exactly_the_ticks_past_the_tolerance(
    ahead_ns: int, tolerance_ns: int
) -> None:
    tick = parse_tick(GOOD)
    try:
        check_not_ahead(tick, received_ns=tick.ts_ns - ahead_ns, max_ahead_ns=tolerance_ns)
    except TickError:
        assert ahead_ns > tolerance_ns
    else:
        assert ahead_ns <= tolerance_ns
