"""Strykr Watch → levels: wordings of each side, instruments, and numbers that are no levels."""

from __future__ import annotations

import pytest

from service.articles.instruments import DEFAULT_ALIASES, Instruments
from service.articles.watch_levels import extract_levels

INSTRUMENTS = Instruments()


def found(watch: str, instruments: Instruments = INSTRUMENTS) -> list[tuple[str, float, str]]:
    levels, _ = extract_levels(watch, instruments)
    return [(level.symbol, level.price, level.side) for level in levels]


def warnings(watch: str) -> list[str]:
    return extract_levels(watch, INSTRUMENTS)[1]


@pytest.mark.parametrize(
    ("watch", "expected"),
    [
        ("IWM support at $255.", [("IWM", 255.0, "support")]),
        ("IWM has a floor at $255.", [("IWM", 255.0, "support")]),
        (
            "A break below $255 puts $250 in play for IWM.",
            [("IWM", 255.0, "support"), ("IWM", 250.0, "support")],
        ),
        ("IWM could slide to $250.", [("IWM", 250.0, "support")]),
        ("IWM resistance at $265.", [("IWM", 265.0, "resistance")]),
        ("IWM is capped at $265.", [("IWM", 265.0, "resistance")]),
        ("For IWM, $265 is the ceiling.", [("IWM", 265.0, "resistance")]),
        ("Watch IWM for a breakout above $265.", [("IWM", 265.0, "resistance")]),
        ("IWM targets $275.", [("IWM", 275.0, "resistance")]),
        ("The downside target for IWM is $245.", [("IWM", 245.0, "support")]),
        (
            "IWM is rangebound between $255 and $265.",
            [("IWM", 255.0, "support"), ("IWM", 265.0, "resistance")],
        ),
        ("IWM holds a $255-$265 range.", [("IWM", 255.0, "support"), ("IWM", 265.0, "resistance")]),
        (
            "With 4,900 acting as resistance and 4,800 as support for the S&P 500.",
            [("SPX", 4900.0, "resistance"), ("SPX", 4800.0, "support")],
        ),
        ("IWM support at $255, then $250.", [("IWM", 255.0, "support"), ("IWM", 250.0, "support")]),
        ("IWM support at $255/$250.", [("IWM", 255.0, "support"), ("IWM", 250.0, "support")]),
        ("If IWM trades below $255, the bears win.", [("IWM", 255.0, "support")]),
    ],
)
def test_side_comes_from_the_words_around_the_price(
    watch: str, expected: list[tuple[str, float, str]]
) -> None:
    assert found(watch) == expected


@pytest.mark.parametrize(
    ("number", "value"),
    [
        ("$255", 255.0),
        ("2,100", 2100.0),
        ("$92,500", 92500.0),
        ("4,800.50", 4800.5),
        ("$100K", 100000.0),
        ("$ 255", 255.0),
        ("0.65", 0.65),
    ],
)
def test_numbers_in_every_written_form(number: str, value: float) -> None:
    assert found(f"IWM support at {number}.") == [("IWM", value, "support")]


@pytest.mark.parametrize(
    "watch",
    [
        "IWM support is 2% lower.",  # percentage
        "IWM support could fall 1.5 percent.",
        "IWM support after a 25 bps cut.",  # basis points
        "IWM support sees 50 basis points of easing.",
        "IWM support meets $64.3 billion of outflows.",  # amounts
        "IWM support meets $3 million in outflows.",
        "IWM support meets $9B in outflows.",
        "IWM support at the 50-day moving average.",  # moving-average lengths
        "IWM support at the 200-day.",
        "IWM support at the 200 DMA.",
        "IWM support while RSI at 45 is neutral.",  # RSI readings
        "IWM support with the RSI reading 30.",
        "IWM support held for 3 sessions.",  # counts
        "IWM support held 4 straight days.",
        "IWM support tested 3 times.",
        "IWM support held since 2022.",  # dates
        "IWM support failed on 2026-02-01.",
        "IWM support failed on Feb 1.",
        "IWM support failed on February 1st, 2026.",
        "IWM support failed on 2/1.",
        "IWM support before the 9:30 open.",
        "Strykr Pulse 40/100 says support for IWM. Threat Level 3/5.",  # scores
        "IWM sits at $259.63 above support.",  # the current price
        "IWM trades at $259.63, near support.",
        "IWM is trading at $259.63 with support below.",
        "IWM, stuck below 260, looks for support.",
        "IWM support, down -2.5 on the day.",  # a change
    ],
)
def test_numbers_that_are_no_levels_are_not_levels(watch: str) -> None:
    assert found(watch) == []


def test_market_prose_capitals_are_not_tickers() -> None:
    assert found("The RSI and the ETF flows: support at $255.") == []
    assert warnings("The RSI and the ETF flows: support at $255.")


def test_level_without_an_instrument_is_a_warning_not_a_guess() -> None:
    text = "Gold has support at $2,000."
    assert found(text) == []
    (warning,) = warnings(text)
    assert "$2,000 (support)" in warning
    assert "no instrument named" in warning
    assert "[aliases]" in warning


def test_aliases_from_config_name_more_instruments() -> None:
    gold = Instruments({**DEFAULT_ALIASES, "Gold": "XAU"})
    assert found("Gold has support at $2,000.", gold) == [("XAU", 2000.0, "support")]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("S&P 500", "SPX"),
        ("Russell 2000", "RUT"),
        ("Nasdaq 100", "NDX"),
        ("Nasdaq-100", "NDX"),
        ("Dow Jones", "DJI"),
        ("VIX", "VIX"),
        ("Bitcoin", "BTC"),
        ("bitcoin", "BTC"),
        ("Ethereum", "ETH"),
        ("iShares Russell 2000 ETF (IWM)", "IWM"),
        ("Apple (AAPL)", "AAPL"),
        ("$TSLA", "TSLA"),
        ("QQQ", "QQQ"),
    ],
)
def test_instrument_names_map_to_symbols(name: str, symbol: str) -> None:
    assert found(f"{name} has support at 100.") == [(symbol, 100.0, "support")]


def test_index_names_with_numbers_are_not_prices() -> None:
    assert found("The S&P 500 and the Russell 2000 and the Nasdaq 100 are in focus.") == []


def test_a_sentence_without_an_instrument_is_about_the_last_one_named() -> None:
    assert found("IWM is weak. Support at $255 is critical.") == [("IWM", 255.0, "support")]


def test_a_repeated_price_keeps_its_instrument_after_another_is_named() -> None:
    text = (
        "IWM resistance at $265. The S&P 500 is the only game in town. "
        "Watch for a breakout above $265."
    )
    assert found(text) == [("IWM", 265.0, "resistance")]


def test_a_price_out_of_scale_for_the_subject_goes_to_the_instrument_it_fits() -> None:
    text = (
        "Bitcoin support at $92,500. Ethereum resistance at $3,450. "
        "Bitcoin is the leader. A break below $3,100 would hurt."
    )
    assert ("ETH", 3100.0, "support") in found(text)
    assert ("BTC", 3100.0, "support") not in found(text)


def test_a_price_that_fits_no_instrument_is_a_warning() -> None:
    text = "Bitcoin support at $92,500. A break below $12 would hurt."
    assert found(text) == [("BTC", 92500.0, "support")]
    assert any("$12" in warning for warning in warnings(text))


def test_a_level_word_without_a_side_uses_the_current_price() -> None:
    text = "IWM trades at $259.63. The key level is $262, and the pivot is $256."
    assert found(text) == [("IWM", 262.0, "resistance"), ("IWM", 256.0, "support")]


def test_a_level_word_without_a_side_or_a_price_is_a_warning() -> None:
    text = "IWM key level: $262."
    assert found(text) == []
    assert any("cannot tell support from resistance" in warning for warning in warnings(text))
