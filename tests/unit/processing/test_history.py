"""Chart history: every interval's bars against polars' ``group_by_dynamic`` on the same ticks."""

from __future__ import annotations

from datetime import UTC

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import parse_config
from service.errors import ConfigError
from service.models import Tick
from service.processing.batch import Batch
from service.processing.history import ChartHistory, HistoryConfig
from tests.builders import T0_NS, tick

SECOND = 1_000_000_000


@st.composite
def streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks of two symbols in time order, some at the same instant, over a few minutes."""
    count = draw(st.integers(1, 80))
    gaps = draw(st.lists(st.integers(0, 40 * SECOND), min_size=count, max_size=count))
    made = []
    ts = T0_NS
    for gap in gaps:
        ts += gap
        made.append(
            Tick(
                symbol=draw(st.sampled_from(["IWM", "SPX"])),
                price=draw(st.floats(10, 20).map(lambda p: round(p, 2))),
                ts_ns=ts,
                volume=draw(st.none() | st.floats(0, 1000).map(lambda v: round(v, 1))),
            )
        )
    return made


def oracle(stream: list[Tick], symbol: str, every: str) -> list[dict[str, float]]:
    mine = [t for t in stream if t.symbol == symbol]
    if not mine:
        return []
    frame = pl.DataFrame(
        {
            "ts": pl.Series([t.ts_ns for t in mine]).cast(pl.Datetime("ns")),
            "price": [t.price for t in mine],
            "volume": [t.volume or 0.0 for t in mine],
        }
    )
    bars = frame.group_by_dynamic("ts", every=every).agg(
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("volume").sum(),
    )
    return [
        {
            "time": row["ts"].replace(tzinfo=UTC).timestamp(),
            "open": row["open"],
            "high": row["high"],
            "low": row["low"],
            "close": row["close"],
            "volume": pytest.approx(row["volume"]),
        }
        for row in bars.iter_rows(named=True)
    ]


@settings(max_examples=150, deadline=None)
@given(streams(), st.integers(1, 8))
def test_bars_are_polars_bars_of_the_same_ticks_however_the_batches_fall(
    stream: list[Tick], batch: int
) -> None:
    history = ChartHistory(HistoryConfig(bars={"10s": "1d", "1m": "1d"}))
    for start in range(0, len(stream), batch):
        history(Batch(stream[start : start + batch], ()))
    for symbol in ("IWM", "SPX"):
        for every in ("10s", "1m"):
            assert history.bars(symbol, every) == oracle(stream, symbol, every)


@settings(max_examples=80, deadline=None)
@given(streams(), st.integers(1, 5))
def test_only_the_newest_bars_of_the_kept_span_stay(stream: list[Tick], kept_minutes: int) -> None:
    history = ChartHistory(HistoryConfig(bars={"1m": f"{kept_minutes}m"}))
    history.observe(stream)
    for symbol in ("IWM", "SPX"):
        full = oracle(stream, symbol, "1m")
        # The bar in progress and the newest closed ones, as many as the span holds.
        assert history.bars(symbol, "1m") == full[-(kept_minutes + 1) :]


def test_since_gives_the_bars_that_end_after_it() -> None:
    history = ChartHistory(HistoryConfig(bars={"1m": "1h"}))
    history.observe([tick(10.0, 0), tick(11.0, 61), tick(12.0, 130), tick(12.5, 131)])
    since = T0_NS + 90 * SECOND  # inside the second bar: it ends after it
    assert [bar["close"] for bar in history.bars("IWM", "1m", since)] == [11.0, 12.5]
    assert history.bars("SPX", "1m") == []


def test_history_is_read_from_the_config_with_errors_by_path() -> None:
    config = parse_config('[history]\nbars = {"5s" = "2h"}\n')
    assert config.history == HistoryConfig(bars={"5s": "2h"})
    assert parse_config("").history == HistoryConfig()
    for text, message in (
        ('bars = {"1s" = "2d"}', "history.bars: 1s: 2d is 172,800 bars; at most 100,000"),
        ('bars = {"1m" = "30s"}', "history.bars: 1m: keep 30s is shorter than one bar"),
        ('bars = {"soon" = "1h"}', "history.bars: soon: "),
        ('bars = ["1m"]', "history.bars: expected a table of interval = kept"),
        ("bar = 3", 'history.bar: unknown key; did you mean "bars"?'),
    ):
        with pytest.raises(ConfigError) as raised:
            parse_config(f"[history]\n{text}\n")
        assert message in str(raised.value), str(raised.value)
