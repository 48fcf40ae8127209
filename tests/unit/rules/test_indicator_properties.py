"""Every indicator, as rules read it, against polars on the same ticks; and batch splits.

The engine's value of an indicator at a tick (what a rule compared with) is
read after the tick with ``RuleEngine.indicator``. The oracles are polars
expressions: bars by ``group_by_dynamic``; ``rolling_mean`` for sma and
sma_volume, ``ewm_mean`` for ema, a reference RSI from ``ewm_mean`` of gains and
losses; ``rolling_max_by`` / ``rolling_min_by`` (closed left) for the window's
high and low, and an exactly rounded sum for its VWAP.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import parse_config
from service.models import Indicator, Rule, Tick
from service.rules import RuleEngine
from service.timestamps import parse_duration
from tests.builders import T0_NS

BAR = "1m"
BAR_NS = parse_duration(BAR)


@st.composite
def ticks(draw: st.DrawFn, symbol: str = "IWM") -> list[Tick]:
    """Ticks with non-decreasing times (ties included), gaps of up to several bars."""
    size = draw(st.integers(1, 120))
    now = T0_NS + draw(st.integers(0, BAR_NS))
    made = []
    for _ in range(size):
        now += draw(
            st.sampled_from((0, 1, 250_000_000, 7_000_000_000, 40_000_000_000, 200_000_000_000))
        )
        price = draw(st.floats(50.0, 150.0, allow_nan=False)).__round__(2)
        volume = draw(st.sampled_from((0.0, 1.0, 100.0, 2_500.0)))
        made.append(Tick(symbol=symbol, price=price, ts_ns=now, volume=volume))
    return made


def reading(*indicators: str) -> tuple[Rule, ...]:
    body = "".join(
        f'[[rules]]\nid = "r{i}"\nsymbol = "IWM"\ncondition = "cross_above"\nlevel = \'{text}\'\n'
        for i, text in enumerate(indicators)
    )
    return parse_config(body).rules


def engine_values(rules: tuple[Rule, ...], stream: list[Tick], indicator: Indicator) -> list[float]:
    engine = RuleEngine(rules, same_time="accept")
    values = []
    for one in stream:
        engine.on_tick(one)
        value = engine.indicator("IWM", indicator)
        assert value is not None
        values.append(value)
    return values


def bar_oracle(stream: list[Tick], column: pl.Expr) -> list[float]:
    """The value of ``column`` (over the closes and volumes of bars) each tick saw."""
    frame = pl.DataFrame(
        {
            "ts": pl.Series([t.ts_ns for t in stream]).cast(pl.Datetime("ns")),
            "price": [t.price for t in stream],
            "volume": [t.volume or 0.0 for t in stream],
        }
    )
    bars = (
        frame.group_by_dynamic("ts", every=BAR)
        .agg(pl.col("price").last().alias("close"), pl.col("volume").sum())
        .with_columns(column.alias("value"), pl.col("ts").dt.epoch("ns").alias("start"))
    )
    after_bar = dict(zip(bars["start"].to_list(), bars["value"].to_list(), strict=True))
    starts = sorted(after_bar)
    seen = []
    for one in stream:
        start = one.ts_ns - one.ts_ns % BAR_NS
        before = [s for s in starts if s < start]
        value = after_bar[before[-1]] if before else None
        seen.append(math.nan if value is None else value)
    return seen


def same(engine: list[float], oracle: list[float], rel: float = 1e-9) -> bool:
    return all(
        (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
        for a, b in zip(engine, oracle, strict=True)
    )


@settings(max_examples=120, deadline=None)
@given(ticks(), st.integers(1, 6))
def test_sma_matches_polars_rolling_mean_of_bar_closes(stream: list[Tick], n: int) -> None:
    indicator = Indicator(name="sma", span=BAR, period=n)
    values = engine_values(reading(str(indicator)), stream, indicator)
    assert same(values, bar_oracle(stream, pl.col("close").rolling_mean(n)))


@settings(max_examples=120, deadline=None)
@given(ticks(), st.integers(1, 6))
def test_ema_matches_polars_ewm_mean(stream: list[Tick], n: int) -> None:
    indicator = Indicator(name="ema", span=BAR, period=n)
    values = engine_values(reading(str(indicator)), stream, indicator)
    oracle = pl.col("close").ewm_mean(span=n, adjust=False, min_samples=n)
    assert same(values, bar_oracle(stream, oracle))


@settings(max_examples=120, deadline=None)
@given(ticks(), st.integers(2, 6))
def test_rsi_matches_a_reference_rsi_from_polars(stream: list[Tick], n: int) -> None:
    indicator = Indicator(name="rsi", span=BAR, period=n)
    values = engine_values(reading(str(indicator)), stream, indicator)
    change = pl.col("close").diff()
    gain = change.clip(lower_bound=0).ewm_mean(alpha=1 / n, adjust=False, min_samples=n)
    loss = (-change).clip(lower_bound=0).ewm_mean(alpha=1 / n, adjust=False, min_samples=n)
    rsi = (
        pl.when(loss == 0)
        .then(pl.when(gain > 0).then(100.0).otherwise(50.0))
        .otherwise(100 - 100 / (1 + gain / loss))
    )
    assert same(values, bar_oracle(stream, rsi), rel=1e-7)


@settings(max_examples=120, deadline=None)
@given(ticks(), st.integers(1, 6))
def test_sma_volume_matches_polars_rolling_mean_of_bar_volumes(stream: list[Tick], n: int) -> None:
    body = (
        '[[rules]]\nid = "r"\nsymbol = "IWM"\ncondition = "cross_below"\nlevel = 1.0\n'
        f'confirm_volume = \'volume("{BAR}") > 2 * sma_volume({n}, "{BAR}")\'\n'
    )
    indicator = Indicator(name="sma_volume", span=BAR, period=n)
    values = engine_values(parse_config(body).rules, stream, indicator)
    assert same(values, bar_oracle(stream, pl.col("volume").rolling_mean(n)))


@settings(max_examples=120, deadline=None)
@given(ticks(), st.sampled_from(("1s", "30s", "1m", "5m")))
def test_window_high_low_and_vwap_match_polars_closed_left(stream: list[Tick], span: str) -> None:
    rules = reading(f'high("{span}")', f'low("{span}")', f'vwap("{span}")')
    engine = RuleEngine(rules, same_time="accept")
    frame = pl.DataFrame(
        {
            "ts": pl.Series([t.ts_ns for t in stream]).cast(pl.Datetime("ns")),
            "price": [t.price for t in stream],
        }
    ).with_columns(
        pl.col("price").rolling_max_by("ts", window_size=span, closed="left").alias("high"),
        pl.col("price").rolling_min_by("ts", window_size=span, closed="left").alias("low"),
    )
    span_ns = parse_duration(span)
    for one, expected in zip(stream, frame.to_dicts(), strict=True):
        engine.on_tick(one)
        for name in ("high", "low"):
            value = engine.indicator("IWM", Indicator(name=name, span=span))  # type: ignore[arg-type]
            assert value is not None
            assert (None if math.isnan(value) else value) == expected[name]
        inside = [t for t in stream if one.ts_ns - span_ns <= t.ts_ns < one.ts_ns]
        volume = math.fsum(t.volume or 0.0 for t in inside)
        vwap = engine.indicator("IWM", Indicator(name="vwap", span=span))
        assert vwap is not None
        if volume > 0:
            exact = math.fsum(t.price * (t.volume or 0.0) for t in inside) / volume
            assert math.isclose(vwap, exact, rel_tol=1e-9)
        else:
            assert math.isnan(vwap)


# --- every condition: one tick at a time or in any batch split, the same alerts ----------

CONDITIONS = (
    'condition = "cross_below"\nlevel = 100.0\nconfirm_ticks = 2',
    'condition = "crossing"\nlevel = \'sma(3, "1m")\'\nhysteresis = 0.5',
    'condition = "greater_than"\nlevel = \'vwap("5m")\'\nfrequency = "once_per_bar"',
    'condition = "cross_above"\nlevel = \'high("2m")\'',
    'condition = "less_than"\nsource = \'rsi(3, "1m")\'\nlevel = 40.0\nfrequency = "every_time"\n'
    "cooldown_seconds = 30",
    'condition = "enter_channel"\nlow = 95.0\nhigh = 105.0',
    'condition = "outside_channel"\nlow = \'low("1m")\'\nhigh = \'high("1m")\'\n'
    'frequency = "every_time"',
    'condition = "moving_up"\nwindow = "2m"\npercent = 3.0',
    'condition = "moving_down"\nwindow = "1m"\namount = 4.0\nfrequency = "once"',
    'condition = "cross_below"\nlevel = \'ema(2, "1m")\'\nfrequency = "once_per_bar_close"',
    'condition = "cross_above"\nlevel = 100.0\n'
    'confirm_volume = \'volume("1m") > 1.5 * sma_volume(2, "1m")\'',
)


def all_conditions(symbols: tuple[str, ...]) -> tuple[Rule, ...]:
    body = "".join(
        f'[[rules]]\nid = "{symbol.lower()}{i}"\nsymbol = "{symbol}"\n{text}\n'
        for symbol in symbols
        for i, text in enumerate(CONDITIONS)
    )
    return parse_config(body).rules


@st.composite
def mixed(draw: st.DrawFn) -> list[Tick]:
    merged = [*draw(ticks("IWM")), *draw(ticks("SPY"))]
    return sorted(merged, key=lambda one: one.ts_ns)


@settings(max_examples=100, deadline=None)
@given(
    mixed(), st.lists(st.integers(1, 40), min_size=1, max_size=10), st.integers(0, 2_000_000_000)
)
def test_every_condition_gives_the_same_alerts_in_any_batch_split(
    stream: list[Tick], splits: list[int], lateness: int
) -> None:
    rules = all_conditions(("IWM", "SPY"))
    settings_: dict[str, Any] = {"same_time": "accept", "lateness_ns": lateness}
    one_by_one = RuleEngine(rules, **settings_)
    expected = [alert for one in stream for alert in one_by_one.on_tick(one)]
    batched = RuleEngine(rules, **settings_)
    got = []
    start = 0
    for size in splits * (len(stream) // max(sum(splits), 1) + 1):
        if start >= len(stream):
            break
        got += batched.on_ticks(stream[start : start + size])
        start += size
    assert [a.id for a in got] == [a.id for a in expected]
    # And a snapshot at the end restores an engine that goes on alike.
    restored = RuleEngine(rules, **settings_)
    restored.restore(batched.snapshot(batched.symbols()))
    later = [
        Tick(symbol=s, price=p, ts_ns=stream[-1].ts_ns + k * 20_000_000_000, volume=50.0)
        for k, (s, p) in enumerate(
            [("IWM", 90.0), ("SPY", 120.0), ("IWM", 110.0), ("SPY", 80.0)], 1
        )
    ]
    assert [a.id for a in restored.on_ticks(later)] == [a.id for a in batched.on_ticks(later)]
