"""Property tests: the parser takes any input without raising, and reads any written price."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.articles import Instruments, parse_article
from service.articles.watch_levels import extract_levels
from service.models import Article

# Text built from article-like pieces finds the parser's paths faster than
# uniform noise does.
PIECES = st.sampled_from(
    [
        "Strykr Watch\n",
        "Strykr Take\n",
        "Strykr Analysis\n",
        "Strykr Pulse 40/100. ",
        "Threat Level 3/5.",
        "datePublished: ",
        "2026-02-02 03:45 UTC",
        "Sources (2)\n",
        "#tag#other\n",
        "support at ",
        "resistance at ",
        "between ",
        " and ",
        "$",
        "1,900",
        "4,800.50",
        "255",
        "k",
        "%",
        "-day",
        " bps",
        "IWM ",
        "S&P 500 ",
        "Name (TICK) ",
        "RSI at ",
        "sits at ",
        ", ",
        ". ",
        "\n",
        "\n\n",
        "(",
        ")",
        "/",
        "<html>",
        "<p>",
        "</p>",
        "<script>",
        "&amp;",
        "\u2019",
        "\u2014",
        "\x00",
    ]
)
ARTICLE_LIKE = st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=60).map("".join)


def check(article: Article) -> None:
    assert isinstance(article, Article)
    for level in article.levels:
        assert level.price > 0
        assert level.side in ("support", "resistance")
        assert level.symbol
    if article.rejected is not None:
        assert article.levels == ()
        assert article.warnings


@given(st.text(max_size=2_000))
def test_parser_never_raises_on_random_text(text: str) -> None:
    check(parse_article(text, source="random.txt"))


@given(ARTICLE_LIKE)
def test_parser_never_raises_on_article_like_text(text: str) -> None:
    check(parse_article(text, source="random.txt"))


@given(st.binary(max_size=2_000))
def test_parser_never_raises_on_random_bytes(data: bytes) -> None:
    check(parse_article(data, source="random.bin"))


@given(ARTICLE_LIKE.map(lambda text: text.encode("utf-8", errors="replace")))
def test_parser_never_raises_on_article_like_bytes(data: bytes) -> None:
    check(parse_article(data, source="random.bin"))


@st.composite
def written_prices(draw: st.DrawFn) -> tuple[float, str]:
    """A price and one way an article writes it: 4800.5 → "$4,800.50"."""
    cents = draw(st.integers(min_value=1, max_value=99_999_999))
    price = cents / 100
    whole, fraction = divmod(cents, 100)
    grouped = draw(st.booleans())
    digits = f"{whole:,}" if grouped else str(whole)
    if fraction or draw(st.booleans()):
        digits += f".{fraction:02d}"
    dollar = "$" if draw(st.booleans()) else ""
    return price, dollar + digits


@given(
    written_prices(),
    st.sampled_from(["IWM", "S&P 500", "Bitcoin", "Apple (AAPL)", "$TSLA"]),
    st.sampled_from(
        [
            ("{name} has support at {price}.", "support"),
            ("A break below {price} is the risk for {name}.", "support"),
            ("{name} is capped at {price}.", "resistance"),
            ("For {name}, {price} is the ceiling.", "resistance"),
            ("{name} faces resistance at {price} after rallying.", "resistance"),
        ]
    ),
)
def test_any_written_price_with_a_side_word_is_read(
    written: tuple[float, str], name: str, template: tuple[str, str]
) -> None:
    price, text = written
    pattern, side = template
    watch = pattern.format(name=name, price=text)
    levels, _ = extract_levels(watch, Instruments())
    assert [(level.price, level.side) for level in levels] == [(price, side)]
