"""Windows of ticks and bars, checked against polars on the same ticks."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.rules.window import Bar, BarBuilder, TickWindow
from service.timestamps import NS_PER_SECOND, parse_duration
from tests.builders import T0_NS


@st.composite
def series(draw: st.DrawFn) -> list[tuple[int, float, float]]:
    """(ts_ns, price, volume) with strictly increasing times and irregular gaps."""
    size = draw(st.integers(1, 150))
    now = T0_NS
    rows = []
    for _ in range(size):
        now += draw(st.integers(1, 90_000)) * 1_000_000  # 1 ms .. 90 s
        price = draw(st.floats(1.0, 5_000.0, allow_nan=False, allow_infinity=False))
        volume = draw(st.sampled_from((0.0, 1.0, 100.0, 250.0, 1e4)))
        rows.append((now, price, volume))
    return rows


def frame(rows: list[tuple[int, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series([ts for ts, _, _ in rows]).cast(pl.Datetime("ns")),
            "price": [p for _, p, _ in rows],
            "volume": [v for _, _, v in rows],
        }
    )


@settings(max_examples=150)
@given(series(), st.sampled_from(("1s", "30s", "1m", "5m")))
def test_tick_window_matches_polars_rolling_by_closed_left(
    rows: list[tuple[int, float, float]], span: str
) -> None:
    oracle = (
        frame(rows)
        .with_columns(
            pl.col("price").rolling_min_by("ts", window_size=span, closed="left").alias("low"),
            pl.col("price").rolling_max_by("ts", window_size=span, closed="left").alias("high"),
        )
        .to_dicts()
    )
    span_ns = parse_duration(span)
    window = TickWindow(span_ns, span)
    for (ts, price, volume), expected in zip(rows, oracle, strict=True):
        window.push(ts, price, volume)
        # The window before the tick, [t - span, t): which ticks, their low and high, as polars.
        assert _or_none(window.low.value) == expected["low"]
        assert _or_none(window.high.value) == expected["high"]
        # VWAP: an exactly rounded sum over the same ticks. polars' own rolling sums
        # cancel catastrophically when a large print leaves the window.
        inside = [(p, v) for t, p, v in rows if ts - span_ns <= t < ts]
        volume_sum = math.fsum(v for _, v in inside)
        if volume_sum > 0:
            vwap = math.fsum(p * v for p, v in inside) / volume_sum
            assert math.isclose(window.vwap.value, vwap, rel_tol=1e-9)
        else:
            assert math.isnan(window.vwap.value)


def push(builder: BarBuilder, ts: int, price: float, volume: float) -> Bar | None:
    """The bar a tick closed, if it closed one."""
    return builder.closed if builder.push(ts, price, volume) else None


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


@settings(max_examples=150)
@given(series(), st.sampled_from(("1s", "10s", "1m", "5m")))
def test_bars_match_polars_group_by_dynamic(
    rows: list[tuple[int, float, float]], interval: str
) -> None:
    oracle = (
        frame(rows)
        .group_by_dynamic("ts", every=interval)
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("volume").sum().alias("volume"),
            pl.len().alias("ticks"),
        )
        .with_columns(pl.col("ts").dt.epoch("ns").alias("start"))
        .to_dicts()
    )
    builder = BarBuilder(parse_duration(interval), interval)
    closed = [bar for ts, p, v in rows if (bar := push(builder, ts, p, v)) is not None]
    last = builder.current()
    assert last is not None
    bars = [*closed, last]
    assert [b.start_ns for b in bars] == [row["start"] for row in oracle]
    for bar, expected in zip(bars, oracle, strict=True):
        assert (bar.open, bar.high, bar.low, bar.close, bar.ticks) == (
            expected["open"],
            expected["high"],
            expected["low"],
            expected["close"],
            expected["ticks"],
        )
        assert math.isclose(bar.volume, expected["volume"], abs_tol=1e-6)
        assert bar.end_ns == bar.start_ns + parse_duration(interval)


def test_tick_window_holds_ticks_from_exactly_one_span_before() -> None:
    window = TickWindow(60 * NS_PER_SECOND, "1m")
    window.push(T0_NS, 10.0, 1.0)
    window.push(T0_NS + 30 * NS_PER_SECOND, 20.0, 1.0)
    window.push(T0_NS + 60 * NS_PER_SECOND, 15.0, 2.0)  # [t - 60 s, t): both earlier ticks
    assert (window.low.value, window.high.value) == (10.0, 20.0)
    window.push(T0_NS + 61 * NS_PER_SECOND, 16.0, 2.0)  # the first is out now
    assert (window.low.value, window.high.value) == (15.0, 20.0)
    assert window.vwap.value == pytest.approx((20.0 + 30.0) / 3.0)


def test_tick_window_ticks_of_one_instant_do_not_see_each_other() -> None:
    window = TickWindow(NS_PER_SECOND, "1s")
    window.push(T0_NS, 5.0, 1.0)
    for price in (3.0, 1.0, 2.0):
        window.push(T0_NS + 1, price, 0.0)
        assert (window.low.value, window.high.value) == (5.0, 5.0)
    window.push(T0_NS + 2, 4.0, 0.0)
    assert (window.low.value, window.high.value) == (1.0, 5.0)


def test_tick_window_before_any_earlier_tick_is_not_ready() -> None:
    window = TickWindow(NS_PER_SECOND, "1s")
    window.push(T0_NS, 5.0, 1.0)
    assert math.isnan(window.high.value)
    assert math.isnan(window.vwap.value)


def test_tick_window_sums_do_not_drift_over_a_long_stream() -> None:
    window = TickWindow(10 * NS_PER_SECOND, "10s")
    for i in range(200_001):
        price = 100.0 + (i * 7919 % 1000) / 997.0
        volume = 1e7 if i % 50_000 == 0 else 100.0 + i % 13  # huge prints come and go
        window.push(T0_NS + i * NS_PER_SECOND, price, volume)
    recent = [
        (100.0 + (i * 7919 % 1000) / 997.0, 100.0 + i % 13) for i in range(200_000 - 10, 200_000)
    ]
    assert window.vwap.value == pytest.approx(
        math.fsum(p * v for p, v in recent) / math.fsum(v for _, v in recent), rel=1e-12
    )


def test_tick_window_state_restores_the_same_values() -> None:
    window = TickWindow(10 * NS_PER_SECOND, "10s")
    for i in range(40):
        window.push(T0_NS + i * NS_PER_SECOND // 3, 100.0 + i % 7, 1.0 + i % 3)
    copy = TickWindow(10 * NS_PER_SECOND, "10s")
    copy.restore(window.state())
    for i in range(40, 80):
        ts, price = T0_NS + i * NS_PER_SECOND // 3, 100.0 + i % 5
        window.push(ts, price, 2.0)
        copy.push(ts, price, 2.0)
        assert (copy.low.value, copy.high.value) == (window.low.value, window.high.value)
        assert copy.vwap.value == pytest.approx(window.vwap.value, rel=1e-12)


def test_bar_builder_closes_by_the_watermark_and_counts_late_ticks() -> None:
    builder = BarBuilder(60 * NS_PER_SECOND, "1m")
    assert builder.push(T0_NS + 5 * NS_PER_SECOND, 10.0, 1.0)  # opens the first bar
    assert builder.close_by(T0_NS + 59 * NS_PER_SECOND) is None
    closed = builder.close_by(T0_NS + 60 * NS_PER_SECOND)
    assert closed is not None
    assert (closed.close, closed.end_ns) == (
        10.0,
        T0_NS + 60 * NS_PER_SECOND,
    )
    assert not builder.push(T0_NS + 59 * NS_PER_SECOND, 11.0, 1.0)  # its bar is final
    assert builder.late == 1
    assert builder.current() is None
    assert push(builder, T0_NS + 61 * NS_PER_SECOND, 12.0, 1.0) is None  # opens one, closes none
    current = builder.current()
    assert current is not None
    assert current.open == 12.0


def test_bar_builder_skips_intervals_without_ticks() -> None:
    builder = BarBuilder(60 * NS_PER_SECOND, "1m")
    assert push(builder, T0_NS + 5 * NS_PER_SECOND, 10.0, 1.0) is None
    closed = push(builder, T0_NS + 185 * NS_PER_SECOND, 11.0, 1.0)
    assert closed is not None
    assert (closed.start_ns, closed.end_ns, closed.close) == (
        T0_NS,
        T0_NS + 60 * NS_PER_SECOND,
        10.0,
    )
    current = builder.current()
    assert current is not None
    assert current.start_ns == T0_NS + 180 * NS_PER_SECOND


@pytest.mark.parametrize("bad", [0, -1])
def test_window_and_bar_when_span_not_positive_refuse(bad: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        TickWindow(bad, "x")
    with pytest.raises(ValueError, match="positive"):
        BarBuilder(bad, "x")
