from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.models import AlertEvent, Article, Level, RangeRule, alert_id, format_price
from service.timestamps import parse_timestamp
from tests.builders import at, tick

KEY = {
    "rule": "iwm-below-255",
    "kind": "break_below",
    "level": 255.0,
    "symbol": "IWM",
    "ts_ns": at(14),
    "price": 254.6,
}


def test_alert_id_is_deterministic_and_compact() -> None:
    assert alert_id(**KEY) == alert_id(**dict(KEY))  # type: ignore[arg-type]
    assert len(alert_id(**KEY)) == 20  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("rule", "iwm-below-250"),
        ("kind", "break_above"),
        ("level", 255.01),
        ("symbol", "SPY"),
        ("ts_ns", at(14) + 1),
        ("price", 254.61),
    ],
)
def test_alert_id_changes_with_every_part_of_its_key(field: str, other: object) -> None:
    assert alert_id(**{**KEY, field: other}) != alert_id(**KEY)  # type: ignore[arg-type]


def make_alert(**changes: object) -> AlertEvent:
    fields: dict[str, object] = {"id": "x", **KEY}
    fields.update(changes)
    return AlertEvent(**fields)  # type: ignore[arg-type]


def test_alert_to_dict_has_the_replay_fields() -> None:
    assert make_alert().to_dict() == {
        "id": "x",
        "rule": "iwm-below-255",
        "symbol": "IWM",
        "kind": "break_below",
        "level": 255.0,
        "price": 254.6,
        "at": "2026-02-02T14:30:14.000Z",
        "trigger": "tick",
        "bar": None,
        "article": None,
        "basis": None,
        "owner": None,
        "headline": "IWM broke below 255.00 at 254.60",
    }


def test_alert_to_dict_with_article_attaches_its_fields_and_levels_for_the_symbol() -> None:
    article = Article(
        source="articles/a.txt",
        title="Small caps are stuck",
        url="https://example.test/a",
        published_ns=parse_timestamp("2026-02-02T03:45:00Z"),
        pulse=40,
        threat_level=3,
        bias="bearish",
        summary="Small caps are stuck.",
        take="Trade the trend.",
        levels=(
            Level(symbol="IWM", price=255.0, side="support"),
            Level(symbol="SPX", price=4900.0, side="resistance"),
        ),
    )
    attached = make_alert(article=article.attachment("IWM")).to_dict()["article"]
    assert attached == {
        "title": "Small caps are stuck",
        "url": "https://example.test/a",
        "published": "2026-02-02T03:45:00Z",
        "pulse": 40,
        "threat_level": 3,
        "bias": "bearish",
        "take": "Trade the trend.",
        "levels": [{"symbol": "IWM", "price": 255.0, "side": "support"}],
    }


def test_article_symbols_are_those_of_its_levels_in_order_of_first_mention() -> None:
    levels = tuple(
        Level(symbol=symbol, price=price, side="support")
        for symbol, price in (("RUT", 1900.0), ("SPX", 4800.0), ("RUT", 1800.0))
    )
    assert Article(source="a", levels=levels).symbols == ["RUT", "SPX"]


def test_alert_headline_reads_like_a_sentence() -> None:
    assert make_alert().headline() == "IWM broke below 255.00 at 254.60"
    assert (
        make_alert(kind="break_above", level=92500.0, price=92511.5, symbol="BTC").headline()
        == "BTC broke above 92500.00 at 92511.50"
    )


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (255.0, "255.00"),
        (254.6, "254.60"),
        (1.08345, "1.08345"),
        (4800.5, "4800.50"),
        (0.00012345, "0.00012345"),
        (0.1 + 0.2, "0.30"),
        (123456789012.5, "1.23457e+11"),
        (1e308, "1e+308"),
        (5e-324, "4.94066e-324"),
    ],
)
def test_format_price_keeps_every_real_decimal_and_stays_short(price: float, text: str) -> None:
    assert format_price(price) == text


@given(st.floats(min_value=5e-324, max_value=1.7976931348623157e308))
def test_format_price_of_any_positive_price_is_short_and_close_to_it(price: float) -> None:
    text = format_price(price)
    assert len(text) <= 16
    assert math.isclose(float(text), price, rel_tol=1e-5)


def test_alert_headline_of_an_absurd_price_is_one_short_line() -> None:
    headline = make_alert(price=1e308).headline()
    assert headline == "IWM broke below 255.00 at 1e+308"


def test_models_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        tick(1.0).price = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_alert().price = 2.0  # type: ignore[misc]


def test_range_rule_sides_are_two_level_rules_with_its_settings() -> None:
    rule = RangeRule(
        id="r",
        symbol="IWM",
        low=255.0,
        high=265.0,
        confirm_ticks=2,
        hysteresis=0.5,
        cooldown_seconds=9,
    )
    low, high = rule.sides()
    assert (low.level, low.direction, high.level, high.direction) == (
        255.0,
        "below",
        265.0,
        "above",
    )
    for side in (low, high):
        assert (side.id, side.confirm_ticks, side.hysteresis, side.cooldown_seconds) == (
            "r",
            2,
            0.5,
            9,
        )
