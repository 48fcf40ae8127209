"""The ``[engine]`` table and the ``[[rules]]`` of alerts.toml.

Defaults are written once, in the dataclasses (:class:`EngineConfig` here, the
rule types in :mod:`service.models`); the readers record every problem by path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from service.config_table import Table, show_value
from service.models import Direction, LevelRule, RangeRule, Rule, RuleSettings
from service.rules.engine import RuleEngine, SameTime
from service.symbols import normalize_symbol

_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
# A bar-close rule without a bar closes 1-minute bars.
DEFAULT_BAR = "1m"


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Engine settings: the tick queue bound, what ticks it takes, when a feed is stale."""

    # Read and checked, but not computed: bars are built for the symbols of bar-close
    # rules, and windows will be for the rules that read them (see unused_settings).
    windows: tuple[str, ...] = ()
    bars: tuple[str, ...] = ()
    queue_size: int = 10_000
    # A symbol with no tick for this long fires a stale_feed alert; 0: never.
    stale_seconds: float = 0.0
    # A tick at the same time as its symbol's last one, at another price: "reject" keeps
    # the first ("same_time"); "accept" takes both, in arrival order (coarse feed clocks).
    same_time: SameTime = "reject"
    # Prices further than this from the symbol's recent prices are rejected
    # ("price_implausible") until price_band_rebase_ticks in a row agree; 0: no band.
    price_band_percent: float = 20.0
    price_band_rebase_ticks: int = 3
    # Evaluated ticks wait at most this many, or this long, for the commit that covers
    # them (their state, and for QoS 1 their acknowledgement); a batch with alerts at once.
    commit_every_ticks: int = 1_000
    commit_within_ms: float = 20.0


def engine_of(settings: EngineConfig, rules: Iterable[Rule]) -> RuleEngine:
    """The engine of ``rules`` with ``settings``: the same for ``run`` and ``replay``."""
    return RuleEngine(
        rules,
        same_time=settings.same_time,
        price_band=settings.price_band_percent / 100,
        rebase_ticks=settings.price_band_rebase_ticks,
    )


def unused_settings(engine: EngineConfig) -> list[str]:
    """Settings given that nothing reads: what ``check`` and ``run`` warn about."""
    unused = []
    if engine.windows:
        unused.append(
            "[engine] windows: no rule reads rolling windows, so none are kept; remove it"
        )
    if engine.bars:
        unused.append(
            "[engine] bars: bars are built only for the symbols of bar-close rules, on "
            "the interval each names (bar = ...); remove it"
        )
    return unused


def read_engine(table: Table) -> EngineConfig:
    table.reads(EngineConfig)
    windows = table.durations("windows")
    bars = table.durations("bars")
    queue_size = table.integer("queue_size", minimum=1)
    stale_seconds = table.number("stale_seconds", minimum=0.0)
    same_time = table.choice("same_time", ("reject", "accept"))
    band = table.number("price_band_percent", minimum=0.0)
    if table.valid("price_band_percent") and band >= 100:
        table.problem(
            "price_band_percent",
            f"expected a percentage below 100 (0 turns the band off), got {show_value(band)}",
        )
    rebase_ticks = table.integer("price_band_rebase_ticks", minimum=2)
    commit_every_ticks = table.integer("commit_every_ticks", minimum=1)
    commit_within_ms = table.number("commit_within_ms", minimum=0.0)
    table.finish()
    return EngineConfig(
        commit_every_ticks=commit_every_ticks,
        commit_within_ms=commit_within_ms,
        windows=windows,
        bars=bars,
        queue_size=queue_size,
        stale_seconds=stale_seconds,
        same_time=cast(SameTime, same_time),
        price_band_percent=band,
        price_band_rebase_ticks=rebase_ticks,
    )


def read_rules(tables: list[Table]) -> tuple[Rule, ...]:
    """The ``[[rules]]`` tables: level rules (``type = "level"``, the default) and ranges."""
    rules: list[Rule] = []
    ids: dict[str, str] = {}
    for table in tables:
        table.reads(RuleSettings)
        rule_id = table.string("id", pattern=_RULE_ID, pattern_hint="letters, digits and . _ : -")
        if rule_id in ids:
            table.problem("id", f"duplicate rule id {show_value(rule_id)} (also {ids[rule_id]})")
        elif rule_id:
            ids[rule_id] = table.path
        rule_type = table.choice("type", ("level", "range"), default="level")
        symbol = table.convert("symbol", normalize_symbol)
        common: dict[str, Any] = {
            "id": rule_id,
            "symbol": symbol,
            "confirm_ticks": table.integer("confirm_ticks", minimum=1),
            "confirm_seconds": table.number("confirm_seconds", minimum=0.0),
            "hysteresis": table.number("hysteresis", minimum=0.0),
            "cooldown_seconds": table.number("cooldown_seconds", minimum=0.0),
        }
        trigger = table.choice("trigger", ("tick", "bar_close"))
        common["trigger"] = trigger
        if trigger == "bar_close":
            common["bar"] = table.duration("bar", default=DEFAULT_BAR)
        elif "bar" in table:
            table.problem(
                "bar", 'is only used with trigger = "bar_close"; remove it or set trigger'
            )
        rule: Rule | None = None
        if rule_type == "range":
            low = table.number("low", exclusive_minimum=0.0)
            high = table.number("high", exclusive_minimum=0.0)
            if table.valid("low", "high") and low >= high:
                table.problem(
                    "high",
                    f"expected a price above low ({show_value(low)}), got {show_value(high)}",
                )
            hysteresis = common["hysteresis"]
            if table.valid("hysteresis", "high") and hysteresis >= high:
                table.problem(
                    "hysteresis",
                    f"expected less than high ({show_value(high)}), got {show_value(hysteresis)}",
                )
            table.finish()
            if table.ok:
                rule = RangeRule(low=low, high=high, **common)
        else:
            level = table.number("level", exclusive_minimum=0.0)
            direction = table.choice("direction", ("below", "above"))
            hysteresis = common["hysteresis"]
            if table.valid("hysteresis", "level", "direction") and (
                direction == "above" and hysteresis >= level
            ):
                table.problem(
                    "hysteresis",
                    f"expected less than the level ({show_value(level)}) for an above rule, "
                    f"got {show_value(hysteresis)}",
                )
            table.finish()
            if table.ok:
                rule = LevelRule(level=level, direction=cast(Direction, direction), **common)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)
