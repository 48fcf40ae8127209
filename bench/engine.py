"""Engine throughput against the floor of per-tick Python work, in the same run.

Pre-built ticks for 1,000 symbols with 3 level rules each (two supports, one
resistance, as a Strykr Watch reads) go through the engine, built with the
service's default [engine] settings (one price per instant, a 20 % price
band), and through a bare loop that only looks up the symbol and compares two
floats. Goal: the engine reaches at least 35 % of the bare loop's rate.

The same ticks also go through rules that read windows and bars: every symbol
crossing above its 20-bar 5 m SMA, below its 30 min VWAP and above its 30 min
high. Goal: at least 1 M ticks/s. The chart history stage (every accepted
tick into its 1 s and 1 m bars) is measured alone. Beside it, the bare window loop: the least
Python that keeps an exact 30 min window per symbol (evict, VWAP sums, a
monotonic deque for the high) and compares the price with both, with no bars,
rules or checks: the floor of per-tick window work in this interpreter.

Scenarios:
  market   each symbol walks with a session-like volatility (about 1.5 % over
           the run); levels 2 % and 4 % below and 2 % above the open, with
           the settings of the shipped alerts.toml (3 ticks to confirm,
           hysteresis 0.1 % of the level, 15 min cooldown).
  whipsaw  a stress case: ten times the volatility, no confirmation, no
           hysteresis, no cooldown, so symbols cross their levels constantly.

    .venv/bin/python bench/engine.py [--ticks 2000000] [--symbols 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import platform
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from service.models import ConditionRule, Indicator, LevelRule, Rule, Tick
from service.processing.engine_task import BATCH_SIZE
from service.processing.history import ChartHistory, HistoryConfig
from service.rules import RuleEngine
from service.rules.settings import EngineConfig

T0_NS = 1_770_042_600_000_000_000
GOAL = 0.35
# Every symbol with an SMA, a VWAP and a rolling-high rule: at least this many ticks a second.
INDICATOR_GOAL = 1_000_000
INDICATORS = "engine.on_ticks, SMA + VWAP + rolling-high rules"
BARE_WINDOW = "bare window loop (30 m VWAP + high, no rules)"
HISTORY = "chart history stage (1 s and 1 m bars)"
WINDOW_NS = 30 * 60 * 1_000_000_000
_Entry = tuple[int, float, float]  # a tick in the bare window: time, price, volume


@dataclass(frozen=True)
class Scenario:
    name: str
    sigma: float  # relative volatility per tick
    confirm_ticks: int
    hysteresis_pct: float
    cooldown_seconds: float


SCENARIOS = {
    "market": Scenario("market", 0.015 / math.sqrt(2000), 3, 0.001, 900.0),
    "whipsaw": Scenario("whipsaw", 0.15 / math.sqrt(2000), 1, 0.0, 0.0),
}


def build(
    scenario: Scenario, symbols: int, count: int, seed: int = 7
) -> tuple[list[LevelRule], list[Tick]]:
    rng = random.Random(seed)
    names = [f"S{i:04d}" for i in range(symbols)]
    opens = {name: rng.uniform(20.0, 600.0) for name in names}
    rules: list[LevelRule] = []
    for name in names:
        for suffix, factor, direction in (
            ("s1", 0.98, "below"),
            ("s2", 0.96, "below"),
            ("r1", 1.02, "above"),
        ):
            level = round(opens[name] * factor, 2)
            rules.append(
                LevelRule(
                    id=f"{name}-{suffix}",
                    symbol=name,
                    level=level,
                    direction=direction,  # type: ignore[arg-type]
                    confirm_ticks=scenario.confirm_ticks,
                    hysteresis=round(level * scenario.hysteresis_pct, 2),
                    cooldown_seconds=scenario.cooldown_seconds,
                )
            )
    price = dict(opens)
    ticks = []
    step_ns = 10_000_000  # 10 ms between ticks: 2 M ticks span a 5.5 h session
    for i in range(count):
        name = names[rng.randrange(symbols)]
        price[name] *= 1.0 + rng.gauss(0.0, scenario.sigma)
        ticks.append(
            Tick(symbol=name, price=round(price[name], 2), ts_ns=T0_NS + i * step_ns, volume=100.0)
        )
    return rules, ticks


def bare_loop(rules: list[LevelRule], ticks: list[Tick]) -> int:
    levels: dict[str, float] = {}
    for rule in rules:
        levels.setdefault(rule.symbol, rule.level)  # the first support of each symbol
    below = 0
    for tick in ticks:
        if tick.price < levels[tick.symbol]:
            below += 1
    return below


def bare_window_loop(rules: list[LevelRule], ticks: list[Tick]) -> int:
    """Per symbol, the exact window of the last 30 min: its VWAP and high, and the price's side."""
    windows: dict[str, tuple[deque[_Entry], deque[_Entry], list[float]]] = {}
    for rule in rules:
        windows.setdefault(rule.symbol, (deque(), deque(), [0.0, 0.0]))
    beyond = 0
    for tick in ticks:
        entries, highs, sums = windows[tick.symbol]
        ts_ns, price, volume = tick.ts_ns, tick.price, tick.volume or 0.0
        cutoff_ns = ts_ns - WINDOW_NS
        while entries and entries[0][0] < cutoff_ns:
            entry = entries.popleft()
            sums[0] -= entry[1] * entry[2]
            sums[1] -= entry[2]
            if highs[0] is entry:
                highs.popleft()
        if sums[1] > 0 and price < sums[0] / sums[1]:
            beyond += 1
        if highs and price > highs[0][1]:
            beyond += 1
        entry = (ts_ns, price, volume)
        entries.append(entry)
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append(entry)
        sums[0] += price * volume
        sums[1] += volume
    return beyond


def chart_history(rules: list[LevelRule], ticks: list[Tick]) -> int:
    """The chart history stage alone, with the default [history] bars (1 s and 1 m), batched."""
    history = ChartHistory(HistoryConfig())
    for start in range(0, len(ticks), BATCH_SIZE):
        history.observe(ticks[start : start + BATCH_SIZE])
    return sum(len(history.bars(symbol, "1m")) for symbol in dict.fromkeys(r.symbol for r in rules))


def engine_per_tick(rules: list[LevelRule], ticks: list[Tick]) -> int:
    engine = service_engine(rules)
    on_tick = engine.on_tick
    alerts = 0
    for tick in ticks:
        fired = on_tick(tick)
        if fired:
            alerts += len(fired)
    return alerts


def service_engine(rules: list[LevelRule], **settings: object) -> RuleEngine:
    """The engine as the service builds it with the default [engine] settings."""
    defaults = EngineConfig()
    options: dict[str, object] = {
        "same_time": defaults.same_time,
        "price_band": defaults.price_band_percent / 100,
        "rebase_ticks": defaults.price_band_rebase_ticks,
        **settings,
    }
    return RuleEngine(rules, **options)  # type: ignore[arg-type]


def run_batched(engine: RuleEngine, ticks: list[Tick]) -> int:
    """``ticks`` through ``engine`` in the pipeline's batches; the number of alerts."""
    alerts = 0
    for start in range(0, len(ticks), BATCH_SIZE):
        alerts += len(engine.on_ticks(ticks[start : start + BATCH_SIZE]))
    return alerts


def engine_batched(rules: list[LevelRule], ticks: list[Tick]) -> int:
    engine = service_engine(rules)
    return run_batched(engine, ticks)


def engine_batched_without_band(rules: list[LevelRule], ticks: list[Tick]) -> int:
    engine = service_engine(rules, price_band=0.0)
    return run_batched(engine, ticks)


def engine_with_bar_close_rules(rules: list[LevelRule], ticks: list[Tick]) -> int:
    """Every rule confirmed on 1-minute bar closes: every symbol builds its bars."""
    closing = [dataclasses.replace(rule, trigger="bar_close", bar="1m") for rule in rules]
    engine = service_engine(closing)
    return run_batched(engine, ticks)


def indicator_rules(rules: list[LevelRule]) -> list[Rule]:
    """Per symbol: above its 20-bar 5 m SMA, below its 30 min VWAP, above its 30 min high."""
    made: list[Rule] = []
    for symbol in dict.fromkeys(rule.symbol for rule in rules):
        for suffix, condition, level in (
            ("sma", "cross_above", Indicator(name="sma", span="5m", period=20)),
            ("vwap", "cross_below", Indicator(name="vwap", span="30m")),
            ("high", "cross_above", Indicator(name="high", span="30m")),
        ):
            made.append(
                ConditionRule(
                    id=f"{symbol}-{suffix}",
                    symbol=symbol,
                    condition=condition,  # type: ignore[arg-type]
                    level=level,
                    cooldown_seconds=900.0,
                )
            )
    return made


def engine_with_indicator_rules(rules: list[LevelRule], ticks: list[Tick]) -> int:
    """Every symbol watches an SMA of bars, a VWAP and a rolling high of ticks."""
    engine = service_engine(indicator_rules(rules))  # type: ignore[arg-type]
    return run_batched(engine, ticks)


def measure(
    loop: Callable[[list[LevelRule], list[Tick]], int],
    rules: list[LevelRule],
    ticks: list[Tick],
) -> tuple[float, int]:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        result = loop(rules, ticks)
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    return len(ticks) / elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each loop; the best counts")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    loops: dict[str, Callable[[list[LevelRule], list[Tick]], int]] = {
        "bare loop (dict look-up + float compare)": bare_loop,
        "engine.on_tick, one call per tick": engine_per_tick,
        f"engine.on_ticks, batches of {BATCH_SIZE}": engine_batched,
        "engine.on_ticks, no price band": engine_batched_without_band,
        "engine.on_ticks, every rule on 1m bar closes": engine_with_bar_close_rules,
        INDICATORS: engine_with_indicator_rules,
        BARE_WINDOW: bare_window_loop,
        HISTORY: chart_history,
    }
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{args.symbols:,} symbols x 3 level rules, {args.ticks:,} ticks, best of {args.repeat}"
    )
    results: dict[str, dict[str, object]] = {}
    for name in SCENARIOS if args.scenario == "all" else [args.scenario]:
        rules, ticks = build(SCENARIOS[name], args.symbols, args.ticks)
        best: dict[str, float] = {}
        outputs: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits every loop alike
            for label, loop in loops.items():
                rate, output = measure(loop, rules, ticks)
                best[label] = max(best.get(label, 0.0), rate)
                outputs[label] = output
        floor = best["bare loop (dict look-up + float compare)"]
        print(f"\nscenario {name}:")
        for label, rate in best.items():
            share = rate / floor
            extra = "" if label.startswith("bare") else f"  {share:6.1%} of bare"
            what = "1 m bars" if label == HISTORY else "alerts"
            if label.startswith("bare"):
                what = "ticks beyond" if label == BARE_WINDOW else "ticks below the first support"
            print(f"  {label:44s} {rate / 1e6:6.2f} M ticks/s{extra}   ({outputs[label]:,} {what})")
        batched = best[f"engine.on_ticks, batches of {BATCH_SIZE}"] / floor
        verdict = "meets" if batched >= GOAL else "MISSES"
        print(f"  goal: engine >= {GOAL:.0%} of the bare loop: {verdict} ({batched:.1%})")
        windowed = best[INDICATORS]
        verdict = "meets" if windowed >= INDICATOR_GOAL else "MISSES"
        print(
            f"  goal: indicator rules >= {INDICATOR_GOAL / 1e6:g} M ticks/s: {verdict} "
            f"({windowed / 1e6:.2f} M, {1e6 / windowed:.2f} us a tick; the bare window "
            f"loop alone: {best[BARE_WINDOW] / 1e6:.2f} M, {1e6 / best[BARE_WINDOW]:.2f} us)"
        )
        results[name] = {"rates": best, "outputs": outputs}
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
