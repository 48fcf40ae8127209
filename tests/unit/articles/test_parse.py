"""The article parser, field by field: the two real seeds and articles of the same shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.articles import parse_article
from service.models import Article, Citation, Level
from tests.conftest import DATA, REPO

SEEDS = REPO / "articles"
SEED_000 = SEEDS / "000_99540e02251797ad.txt"
SEED_001 = SEEDS / "001_7e7d38b367ad2241.txt"
OWN = DATA / "articles"


def parse_file(path: Path) -> Article:
    return parse_article(path.read_bytes(), source=str(path))


def levels(article: Article) -> list[tuple[str, float, str]]:
    return [(level.symbol, level.price, level.side) for level in article.levels]


def test_seed_000_plain_text_without_a_title() -> None:
    article = parse_file(SEED_000)
    assert article.rejected is None
    assert article.title is None
    assert article.published == "2026-02-02T03:45:00Z"
    assert article.pulse == 40
    assert article.threat_level == 3
    assert article.bias == "bearish"
    assert article.summary == (
        "Small caps are stuck, liquidity is tight, and macro risks are everywhere."
    )
    assert article.watch is not None
    assert article.watch.startswith("Technically, IWM is rangebound between $255 and $265.")
    assert article.watch.endswith("but don’t hold your breath.")
    assert article.take is not None
    assert article.take.startswith("Small caps aren’t just underperforming.")
    assert article.take.endswith("Trade the trend, not the narrative.")
    assert article.tags == ()
    assert len(article.sources) == 5
    assert article.sources[0] == Citation(
        title="The Wild Markets Behind Polymarket's ‘Truth Machine'",
        snippet="Shayne Coplan has built the crypto-based betting platform into a $9 billion "
        "company. The Justice Department shelved its probe.",
    )
    assert article.sources[3].title == "S&P 500: Beware February (Technical Analysis)"
    assert levels(article) == [
        ("IWM", 255.0, "support"),
        ("IWM", 265.0, "resistance"),
        ("IWM", 250.0, "support"),
    ]
    assert article.warnings == ()


def test_seed_001_page_scrape_with_title_sources_and_tags() -> None:
    article = parse_file(SEED_001)
    assert article.title == (
        "Small Caps Left for Dead: Why the S&P 500 Is Crushing the Little Guys (Again)"
    )
    assert article.published == "2026-02-01T18:15:00Z"
    assert article.pulse == 41
    assert article.threat_level == 4
    assert article.bias == "bearish"
    assert article.summary == (
        "Small caps face structural headwinds, and flows are crowding into large caps."
    )
    assert article.watch is not None
    assert article.watch.startswith("Traders should watch the Russell 2000’s Strykr Watch.")
    assert "The VIX is rising" in article.watch
    assert article.take is not None
    assert article.take.startswith("Small caps are out of favor")
    assert article.tags == (
        "sp500",
        "small-caps",
        "underperformance",
        "liquidity",
        "credit",
        "volatility",
        "macro",
    )
    assert [citation.site for citation in article.sources] == [
        "marketwatch.com",
        "youtube.com",
        "marketwatch.com",
        "seekingalpha.com",
        "wsj.com",
    ]
    assert article.sources[1].title == (
        "President Trump is focused on affordability. Fintech stocks may be the way to play it"
    )
    assert article.sources[4].snippet == (
        "One trader talks about his wagers on a Discord channel, including wins that help pay "
        "the rent."
    )
    assert levels(article) == [
        ("RUT", 1900.0, "support"),
        ("RUT", 1800.0, "support"),
        ("RUT", 2100.0, "resistance"),
        ("SPX", 4900.0, "resistance"),
        ("SPX", 4800.0, "support"),
    ]


def test_plain_text_crypto_article_by_name_with_round_and_k_numbers() -> None:
    article = parse_file(OWN / "btc_plain.txt")
    assert (article.title, article.pulse, article.threat_level, article.bias) == (
        None,
        72,
        2,
        "bullish",
    )
    assert article.published == "2026-03-03T14:05:00Z"
    assert article.take == "Buy the dips while $92,500 holds."
    assert article.sources == (
        Citation(title="Bitcoin ETFs log a record week", snippet="Inflows topped $1.2 billion."),
    )
    # Not levels: $95,400 (where it trades), 3.2%, RSI at 64.
    assert levels(article) == [
        ("BTC", 92500.0, "support"),
        ("BTC", 88000.0, "support"),
        ("BTC", 100000.0, "resistance"),
        ("BTC", 108000.0, "resistance"),
    ]


def test_page_scrape_with_name_ticker_form() -> None:
    article = parse_file(OWN / "eth_page.txt")
    assert article.title == "Ether Slips as Layer-2 Fees Collapse"
    assert (article.pulse, article.threat_level, article.bias) == (35, 3, "bearish")
    assert article.published == "2026-03-04T09:30:00Z"
    assert article.tags == ("crypto", "ethereum")
    assert article.sources == (
        Citation(
            title="Ethereum fees hit a 2026 low",
            snippet="Layer-2 activity is cheaper than ever.",
            site="coindesk.com",
        ),
    )
    # Not levels: the 200-day average, 12%, January 15.
    assert levels(article) == [
        ("ETH", 3450.0, "resistance"),
        ("ETH", 3100.0, "support"),
        ("ETH", 2850.0, "support"),
    ]


def test_page_scrape_with_two_indices_by_name_and_decimal_levels() -> None:
    article = parse_file(OWN / "ndx_page.txt")
    assert article.title == "Nasdaq 100 and the Dow Jones Stall Below Records"
    assert article.bias == "neutral"
    # "sits at 44,100" is where the Dow trades; 25 bps is no price; "a close below
    # 20,800" names no index but repeats the Nasdaq's level.
    assert levels(article) == [
        ("NDX", 21500.0, "resistance"),
        ("NDX", 20800.0, "support"),
        ("DJI", 45000.0, "resistance"),
        ("DJI", 43250.5, "support"),
    ]


def test_plain_text_single_stock_with_company_name_and_ticker() -> None:
    article = parse_file(OWN / "nvda_plain.txt")
    assert article.pulse == 66
    assert article.sources == ()
    assert levels(article) == [
        ("NVDA", 125.0, "support"),
        ("NVDA", 140.0, "resistance"),
        ("NVDA", 150.0, "resistance"),
    ]


def test_markdown_article_with_inline_watch_heading_and_bullets() -> None:
    text = (
        "# Gold miners wake up\n\nStrykr Pulse 58/100. Miners catch a bid. Threat Level 2/5.\n\n"
        "## Strykr Watch:\n- GDX support at $38.50\n- GDX resistance at $42\n\n"
        "Later paragraphs are not part of the watch: support at $30.\n"
        "url: https://strykr.example/gdx\n"
    )
    article = parse_article(text, source="gdx.md")
    assert article.title == "Gold miners wake up"
    assert article.url == "https://strykr.example/gdx"
    assert article.watch == "- GDX support at $38.50\n- GDX resistance at $42"
    assert levels(article) == [("GDX", 38.5, "support"), ("GDX", 42.0, "resistance")]


def test_html_article_reads_as_text_with_structured_date() -> None:
    html = (
        "<!doctype html><html><head><title>IWM stalls | Strykr</title>"
        '<script type="application/ld+json">{"datePublished": "2026-02-02T03:45:00Z"}</script>'
        "<style>p {color: red}</style></head><body><p>Strykr Pulse 40/100. Stuck. "
        "Threat Level 3/5.</p><h2>Strykr Watch</h2><p>IWM support at $255 &amp; resistance "
        "at $265.</p><h2>Strykr Take</h2><p>Wait.</p></body></html>"
    )
    article = parse_article(html, source="iwm.html")
    assert article.title == "IWM stalls"
    assert article.published == "2026-02-02T03:45:00Z"
    assert article.take == "Wait."
    assert levels(article) == [("IWM", 255.0, "support"), ("IWM", 265.0, "resistance")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"  \n\t\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("\x01\x02\x03\x04 text \x05\x06\x07", "binary"),
        (b"x" * 2_000_001, "too_large"),
    ],
)
def test_input_that_is_no_article_comes_back_rejected_with_a_reason(
    data: str | bytes, reason: str
) -> None:
    article = parse_article(data, source="bad.txt", max_bytes=2_000_000)
    assert article.rejected == reason
    assert article.levels == ()
    assert article.warnings  # says what was wrong


def test_article_without_a_watch_has_no_levels_and_says_why() -> None:
    article = parse_article("Strykr Pulse 50/100. Quiet. IWM support at $255.", source="a.txt")
    assert article.rejected is None
    assert article.levels == ()
    assert article.pulse == 50
    assert any("Strykr Watch" in warning for warning in article.warnings)


def test_windows_1252_text_is_read_with_a_warning() -> None:
    data = "Strykr Watch\nIWM support at $255 \u2014 firm.\n".encode("cp1252")
    article = parse_article(data, source="old.txt")
    assert levels(article) == [("IWM", 255.0, "support")]
    assert any("Windows-1252" in warning for warning in article.warnings)


def test_bad_date_published_is_a_warning_not_a_date() -> None:
    article = parse_article("Strykr Watch\nIWM support at $255.\ndatePublished: soon", source="a")
    assert article.published_ns is None
    assert any("datePublished" in warning for warning in article.warnings)


def test_scores_out_of_range_are_not_taken() -> None:
    article = parse_article("Strykr Pulse 140/100. Threat Level 9/5.", source="a")
    assert (article.pulse, article.threat_level) == (None, None)


def test_to_dict_has_every_field_as_json_types() -> None:
    data = parse_file(SEED_000).to_dict()
    assert list(data) == [
        "source",
        "title",
        "url",
        "published",
        "pulse",
        "threat_level",
        "bias",
        "summary",
        "watch",
        "take",
        "tags",
        "sources",
        "levels",
        "warnings",
    ]
    assert data["levels"] == [
        Level(symbol="IWM", price=255.0, side="support").to_dict(),
        Level(symbol="IWM", price=265.0, side="resistance").to_dict(),
        Level(symbol="IWM", price=250.0, side="support").to_dict(),
    ]


def test_a_huge_watch_is_read_up_to_a_bound_with_a_warning() -> None:
    watch = "IWM support at $255. " + "Nothing to see here, 42 times over. " * 20_000
    article = parse_article("Strykr Watch\n" + watch, source="long.txt")
    assert levels(article) == [("IWM", 255.0, "support")]
    assert any("only the first 20,000 are read" in warning for warning in article.warnings)
