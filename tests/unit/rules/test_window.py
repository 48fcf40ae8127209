"""Rolling windows and bars, checked against polars on the same ticks."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.rules.window import BarBuilder, RollingWindow
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
def test_rolling_window_matches_polars_rolling_by(
    rows: list[tuple[int, float, float]], span: str
) -> None:
    oracle = (
        frame(rows)
        .with_columns(
            pl.col("price").rolling_min_by("ts", window_size=span).alias("low"),
            pl.col("price").rolling_max_by("ts", window_size=span).alias("high"),
            pl.col("price").rolling_mean_by("ts", window_size=span).alias("mean"),
            pl.col("price").rolling_sum_by("ts", window_size=span).alias("sum"),
        )
        .to_dicts()
    )
    span_ns = parse_duration(span)
    window = RollingWindow(span_ns, span)
    for index, ((ts, price, volume), expected) in enumerate(zip(rows, oracle, strict=True)):
        window.push(ts, price, volume)
        stats = window.stats()
        assert stats is not None
        # Which ticks are in the window, and its min, max and mean: as polars says.
        assert stats.low == expected["low"]
        assert stats.high == expected["high"]
        assert math.isclose(stats.mean, expected["mean"], rel_tol=1e-9)
        assert math.isclose(stats.mean * stats.count, expected["sum"], rel_tol=1e-9)
        # Volume and VWAP: exactly rounded sums over the same ticks. polars' own
        # rolling sums cancel catastrophically when a large print leaves the window.
        inside = [(p, v) for t, p, v in rows[: index + 1] if t > ts - span_ns]
        assert stats.count == len(inside)
        volume_sum = math.fsum(v for _, v in inside)
        assert math.isclose(stats.volume, volume_sum, rel_tol=1e-12, abs_tol=1e-9)
        if volume_sum > 0:
            assert stats.vwap is not None
            vwap = math.fsum(p * v for p, v in inside) / volume_sum
            assert math.isclose(stats.vwap, vwap, rel_tol=1e-12)
        else:
            assert stats.vwap is None


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
    closed = [bar for ts, p, v in rows if (bar := builder.push(ts, p, v)) is not None]
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


def test_rolling_window_expires_ticks_exactly_one_span_old() -> None:
    window = RollingWindow(60 * NS_PER_SECOND, "1m")
    window.push(T0_NS, 10.0, 1.0)
    window.push(T0_NS + 30 * NS_PER_SECOND, 20.0, 1.0)
    window.push(T0_NS + 60 * NS_PER_SECOND, 15.0, 2.0)  # (t - 60 s, t]: the first tick is out
    stats = window.stats()
    assert stats is not None
    assert (stats.count, stats.low, stats.high, stats.volume) == (2, 15.0, 20.0, 3.0)
    assert stats.mean == pytest.approx(17.5)
    assert stats.vwap == pytest.approx((20.0 + 30.0) / 3.0)


def test_rolling_window_with_equal_times_keeps_every_tick() -> None:
    window = RollingWindow(NS_PER_SECOND, "1s")
    for price in (3.0, 1.0, 2.0):
        window.push(T0_NS, price, 0.0)
    stats = window.stats()
    assert stats is not None
    assert (stats.count, stats.low, stats.high, stats.vwap) == (3, 1.0, 3.0, None)


def test_rolling_window_before_any_tick_has_no_stats() -> None:
    assert RollingWindow(NS_PER_SECOND, "1s").stats() is None


def test_rolling_window_sums_do_not_drift_over_a_long_stream() -> None:
    window = RollingWindow(10 * NS_PER_SECOND, "10s")
    price = 100.0
    for i in range(200_000):
        price = 100.0 + (i * 7919 % 1000) / 997.0
        window.push(T0_NS + i * NS_PER_SECOND, price, 100.0 + i % 13)
    stats = window.stats()
    assert stats is not None
    recent = [
        (100.0 + (i * 7919 % 1000) / 997.0, 100.0 + i % 13) for i in range(200_000 - 10, 200_000)
    ]
    assert stats.mean == pytest.approx(math.fsum(p for p, _ in recent) / 10, rel=1e-14)
    assert stats.vwap == pytest.approx(
        math.fsum(p * v for p, v in recent) / math.fsum(v for _, v in recent), rel=1e-14
    )


def test_bar_builder_skips_intervals_without_ticks() -> None:
    builder = BarBuilder(60 * NS_PER_SECOND, "1m")
    assert builder.push(T0_NS + 5 * NS_PER_SECOND, 10.0, 1.0) is None
    closed = builder.push(T0_NS + 185 * NS_PER_SECOND, 11.0, 1.0)
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
        RollingWindow(bad, "x")
    with pytest.raises(ValueError, match="positive"):
        BarBuilder(bad, "x")
