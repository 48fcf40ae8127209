"""The ``[engine]`` table and the ``[[rules]]`` of alerts.toml.

Defaults are written once, in the dataclasses (:class:`EngineConfig` here, the
rule types in :mod:`service.models`); the readers record every problem by path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from service.config_table import Table, show_value
from service.models import (
    CONDITIONS,
    Condition,
    ConditionRule,
    Direction,
    Indicator,
    LevelRule,
    Operand,
    RangeRule,
    Rule,
    RuleSettings,
    VolumeConfirm,
    format_price,
    show_operand,
)
from service.rules.engine import MarketOf, RuleEngine, SameTime
from service.rules.operands import FORMS, parse_indicator, parse_volume_confirm
from service.symbols import normalize_symbol
from service.timestamps import parse_timestamp

_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
# A bar-close rule without a bar closes 1-minute bars.
DEFAULT_BAR = "1m"
# Conditions true for as long as they hold: without a frequency they fire once, as
# TradingView's do, rather than on every tick.
STATE_CONDITIONS = frozenset({"greater_than", "less_than", "inside_channel", "outside_channel"})


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
    # A bar closes once the watermark (the newest tick time, or in a live run the feed's
    # clock as the wall clock carries it on) is this far past its end: ticks later than
    # that are late for their bar. More waits longer for a quiet symbol's bar-close alert.
    lateness_ms: float = 1_000.0


def engine_of(
    settings: EngineConfig, rules: Iterable[Rule], market_of: MarketOf | None = None
) -> RuleEngine:
    """The engine of ``rules`` with ``settings``: the same for ``run`` and ``replay``."""
    return RuleEngine(
        rules,
        same_time=settings.same_time,
        price_band=settings.price_band_percent / 100,
        rebase_ticks=settings.price_band_rebase_ticks,
        lateness_ns=round(settings.lateness_ms * 1_000_000),
        market_of=market_of,
    )


def describe_rule(rule: Rule) -> str:
    """One line for people: ``IWM cross_below 255.00``, ``IWM moving_up 2 % in 15m``."""
    if isinstance(rule, LevelRule):
        what = f"cross_{rule.direction} {format_price(rule.level)}"
    elif isinstance(rule, RangeRule):
        what = f"exit_channel {format_price(rule.low)}-{format_price(rule.high)}"
    else:
        subject = "" if rule.source is None else f"{rule.source} "
        if rule.window is not None:
            reference = rule.move
        elif rule.low is not None and rule.high is not None:
            reference = f"{show_operand(rule.low)}-{show_operand(rule.high)}"
        else:
            reference = show_operand(rule.level)
        what = f"{subject}{rule.condition} {reference}"
    extras: list[str] = [] if rule.frequency == "every_time" else [rule.frequency]
    if rule.trigger == "bar_close":
        extras.append(f"on {rule.bar} closes")
    if rule.session != "any":
        extras.append(f"{rule.session} hours")
    tail = f" ({', '.join(extras)})" if extras else ""
    return f"{rule.symbol} {what}{tail}"


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
    lateness_ms = table.number("lateness_ms", minimum=0.0)
    table.finish()
    return EngineConfig(
        lateness_ms=lateness_ms,
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
    """The ``[[rules]]`` tables: a ``condition`` each (docs/rules.md), or a level or range."""
    rules: list[Rule] = []
    ids: dict[str, str] = {}
    for table in tables:
        table.reads(RuleSettings)
        rule_id = table.string("id", pattern=_RULE_ID, pattern_hint="letters, digits and . _ : -")
        if rule_id in ids:
            table.problem("id", f"duplicate rule id {show_value(rule_id)} (also {ids[rule_id]})")
        elif rule_id:
            ids[rule_id] = table.path
        symbol = table.convert("symbol", normalize_symbol)
        condition = _condition(table)
        common: dict[str, Any] = {
            "id": rule_id,
            "symbol": symbol,
            "confirm_ticks": table.integer("confirm_ticks", minimum=1),
            "confirm_seconds": table.number("confirm_seconds", minimum=0.0),
            "hysteresis": table.number("hysteresis", minimum=0.0),
            "cooldown_seconds": table.number("cooldown_seconds", minimum=0.0),
            **_lifecycle(table, condition),
        }
        rule = _rule(table, condition, common) if condition else None
        # With no condition known, which keys it would use is not known either.
        table.finish(ignore_unknown=not condition)
        if rule is not None and table.ok:
            rules.append(rule)
    return tuple(rules)


def _condition(table: Table) -> str:
    """The rule's condition; ``type`` and ``direction`` name today's two kinds of rule."""
    if "condition" in table:
        condition = table.choice("condition", CONDITIONS)
        for legacy in ("type", "direction"):
            if legacy in table:
                table.problem(legacy, "is not used with condition; remove it")
        return condition
    rule_type = table.choice("type", ("level", "range"), default="level")
    if rule_type == "range":
        return "exit_channel"
    if rule_type != "level":
        return ""
    direction = table.choice("direction", ("below", "above"))
    return {"below": "cross_below", "above": "cross_above"}.get(direction, "")


def _lifecycle(table: Table, condition: str) -> dict[str, Any]:
    """When the rule may fire: frequency (or trigger), bar, expiry, pause, session, volume."""
    default = "once" if condition in STATE_CONDITIONS else "every_time"
    frequency = table.choice(
        "frequency", ("every_time", "once", "once_per_bar", "once_per_bar_close"), default=default
    )
    trigger = table.choice("trigger", ("tick", "bar_close"))
    if "trigger" in table and "frequency" in table:
        table.problem("trigger", 'is frequency = "once_per_bar_close" now; keep one of the two')
    by_bar = frequency in ("once_per_bar", "once_per_bar_close") or trigger == "bar_close"
    settings: dict[str, Any] = {
        "trigger": "bar_close" if frequency == "once_per_bar_close" else trigger,
        "frequency": "every_time" if frequency == "once_per_bar_close" else frequency,
    }
    if by_bar:
        settings["bar"] = table.duration("bar", default=DEFAULT_BAR)
    elif "bar" in table:
        table.problem(
            "bar",
            'is only used with frequency = "once_per_bar" or "once_per_bar_close"; '
            "remove it or set frequency",
        )
    if "expires" in table:
        settings["expires_ns"] = table.convert("expires", _instant)
    settings["paused"] = table.boolean("paused")
    settings["session"] = table.choice("session", ("any", "regular", "extended"))
    if "confirm_volume" in table:
        settings["volume"] = table.convert("confirm_volume", _volume_confirm)
    return settings


def _rule(table: Table, condition: str, common: dict[str, Any]) -> Rule | None:
    source = table.convert("source", _source) if "source" in table else None
    if condition in ("moving_up", "moving_down"):
        return _move(table, condition, common, source)
    if condition in ("enter_channel", "exit_channel", "inside_channel", "outside_channel"):
        for key in ("level", "percent", "amount", "window"):
            _not_used(table, key, condition)
        low = table.convert("low", _operand)
        high = table.convert("high", _operand)
        if isinstance(low, float) and isinstance(high, float) and low >= high:
            table.problem(
                "high", f"expected a price above low ({show_value(low)}), got {show_value(high)}"
            )
        hysteresis = common["hysteresis"]
        if isinstance(high, float) and table.valid("hysteresis") and hysteresis >= high:
            table.problem(
                "hysteresis",
                f"expected less than high ({show_value(high)}), got {show_value(hysteresis)}",
            )
        if not table.ok:
            return None
        fixed = isinstance(low, float) and isinstance(high, float)
        if condition == "exit_channel" and source is None and fixed:
            return RangeRule(low=cast(float, low), high=cast(float, high), **common)
        return ConditionRule(
            condition=cast(Condition, condition), source=source, low=low, high=high, **common
        )
    for key in ("low", "high", "percent", "amount", "window"):
        _not_used(table, key, condition)
    level = table.convert("level", _operand)
    hysteresis = common["hysteresis"]
    if (
        condition in ("cross_above", "crossing", "greater_than")
        and isinstance(level, float)
        and table.valid("hysteresis")
        and hysteresis >= level
    ):
        table.problem(
            "hysteresis",
            f"expected less than the level ({show_value(level)}) for an above rule, "
            f"got {show_value(hysteresis)}",
        )
    if not table.ok:
        return None
    if condition in ("cross_below", "cross_above") and source is None and isinstance(level, float):
        direction = "below" if condition == "cross_below" else "above"
        return LevelRule(level=level, direction=cast(Direction, direction), **common)
    return ConditionRule(condition=cast(Condition, condition), source=source, level=level, **common)


def _move(
    table: Table, condition: str, common: dict[str, Any], source: Indicator | None
) -> Rule | None:
    for key in ("level", "low", "high"):
        _not_used(table, key, condition)
    if source is not None:
        table.problem("source", f"{condition} measures the price's move; remove source")
    window = table.duration("window")
    percent = table.number("percent", exclusive_minimum=0.0) if "percent" in table else None
    amount = table.number("amount", exclusive_minimum=0.0) if "amount" in table else None
    if (percent is None) == (amount is None):
        table.problem(
            "percent", f"{condition} needs one of percent (2 for 2 %) or amount (in price units)"
        )
    if not table.ok:
        return None
    return ConditionRule(
        condition=cast(Condition, condition),
        window=window,
        percent=percent,
        amount=amount,
        **common,
    )


def _not_used(table: Table, key: str, condition: str) -> None:
    if key in table:
        table.problem(key, f"is not used by condition {show_value(condition)}; remove it")


def _operand(value: object) -> Operand:
    if isinstance(value, bool):
        raise ValueError(f"expected a number or an indicator, got {show_value(value)}")
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {show_value(value)}")
        if number <= 0:
            raise ValueError(f"expected a number > 0, got {show_value(value)}")
        return number
    if isinstance(value, str):
        return parse_indicator(value)
    raise ValueError(f"expected a price or an indicator such as {FORMS}, got {show_value(value)}")


def _source(value: object) -> Indicator:
    if not isinstance(value, str):
        raise ValueError(f'expected an indicator such as rsi(14, "5m"), got {show_value(value)}')
    return parse_indicator(value)


def _instant(value: object) -> int:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise ValueError(
            f'expected a time such as "2026-03-01T21:00:00Z", got {show_value(value)}'
        ) from None


def _volume_confirm(value: object) -> VolumeConfirm:
    if not isinstance(value, str):
        raise ValueError(
            f'expected volume("1m") > 2 * sma_volume(20, "1m"), got {show_value(value)}'
        )
    return parse_volume_confirm(value)
