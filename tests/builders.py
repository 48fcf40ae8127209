"""Small builders shared by the tests: plain values, no I/O, nothing of the service's shell."""

from __future__ import annotations

from typing import Any

from service.models import AlertEvent, Article, Direction, Level, LevelRule, Side, Tick, alert_id
from service.timestamps import NS_PER_SECOND, parse_timestamp

# 2026-02-02 14:30:00 UTC, the open of the sample day.
T0_NS = parse_timestamp("2026-02-02T14:30:00Z")


def at(seconds: float) -> int:
    """The instant ``seconds`` after T0, in nanoseconds."""
    return T0_NS + round(seconds * NS_PER_SECOND)


def tick(
    price: float, seconds: float = 0.0, symbol: str = "IWM", volume: float | None = None
) -> Tick:
    return Tick(symbol=symbol, price=price, ts_ns=at(seconds), volume=volume)


def alert_at(seconds: float, symbol: str = "IWM", *, price: float = 254.0) -> AlertEvent:
    """A break of 255 below, at T0 + ``seconds``, with its deterministic id."""
    key = {
        "rule": f"{symbol.lower()}-below-255",
        "kind": "break_below",
        "level": 255.0,
        "symbol": symbol,
        "ts_ns": at(seconds),
        "price": price,
    }
    return AlertEvent(id=alert_id(**key), **key)  # type: ignore[arg-type]


def level_rule(
    level: float = 255.0,
    direction: Direction = "below",
    *,
    rule_id: str = "r",
    symbol: str = "IWM",
    **settings: Any,
) -> LevelRule:
    return LevelRule(id=rule_id, symbol=symbol, level=level, direction=direction, **settings)


def article(
    source: str, published_s: float | None, *levels: tuple[str, float, Side], title: str = ""
) -> Article:
    """An article from ``source`` published ``published_s`` after T0, naming ``levels``."""
    return Article(
        source=source,
        title=title or source,
        published_ns=None if published_s is None else at(published_s),
        levels=tuple(Level(symbol=s, price=p, side=side) for s, p, side in levels),
    )
