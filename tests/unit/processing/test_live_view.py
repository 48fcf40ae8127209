"""What readers see of the engine: levels, latest articles and symbols, as of its last change."""

from __future__ import annotations

from service.articles.store import ArticleStore
from service.articles.tracker import auto_rule_id
from service.models import RangeRule
from service.processing.live_view import LiveView
from tests.builders import article, at, level_rule


def store_with(*articles_: tuple[str, float, tuple[str, float, str]]) -> ArticleStore:
    store = ArticleStore()
    for source, published_s, level in articles_:
        store.put(article(source, published_s, level), received_ns=at(0))
    return store


def test_levels_name_their_origin_and_the_article_of_an_article_level() -> None:
    store = store_with(("a", 10, ("IWM", 250.0, "support")))
    view = LiveView(["IWM"])
    view.refresh(
        [
            level_rule(255.0, rule_id="iwm-below-255"),
            level_rule(250.0, rule_id=auto_rule_id("IWM", "below", 250.0)),
        ],
        store,
    )
    config_level, article_level = view.levels(None)
    assert (config_level["origin"], config_level["article"]) == ("config", None)
    assert config_level["side"] == "support"
    assert article_level["origin"] == "article"
    assert article_level["article"] == {
        "title": "a",
        "url": None,
        "published": "2026-02-02T14:30:10Z",
    }


def test_a_range_shows_as_its_two_sides_and_levels_filter_by_symbol() -> None:
    view = LiveView()
    view.refresh(
        [
            RangeRule(id="spx", symbol="SPX", low=4800.0, high=4900.0),
            level_rule(255.0, rule_id="iwm"),
        ],
        None,
    )
    spx = view.levels(frozenset({"SPX"}))
    assert [(level["level"], level["side"]) for level in spx] == [
        (4800.0, "support"),
        (4900.0, "resistance"),
    ]
    assert view.levels(frozenset({"RUT"})) == []


def test_articles_are_the_latest_per_symbol_and_findable_by_source() -> None:
    store = store_with(
        ("old", 10, ("IWM", 250.0, "support")),
        ("new", 20, ("IWM", 245.0, "support")),
        ("spx", 15, ("SPX", 4800.0, "support")),
    )
    view = LiveView()
    view.refresh([], store)
    assert view.articles(frozenset({"IWM"}))["IWM"]["title"] == "new"
    assert sorted(view.articles(None)) == ["IWM", "SPX"]
    assert view.articles(frozenset({"RUT"})) == {}
    assert view.article_symbols("spx") == ("SPX",)
    assert view.article_symbols("nowhere") is None


def test_known_symbols_are_the_configs_the_rules_the_articles_and_those_that_ticked() -> None:
    view = LiveView(["IWM"])
    assert view.known_symbols() == {"IWM"}
    view.refresh([level_rule(symbol="SPX")], store_with(("a", 10, ("RUT", 1900.0, "support"))))
    assert view.known_symbols() == {"IWM", "SPX", "RUT"}
    view.saw(["BTC-USD"])
    assert view.known_symbols() == {"IWM", "SPX", "RUT", "BTC-USD"}
    view.refresh([], None)  # rules and articles gone: what ticked stays known
    assert view.known_symbols() == {"IWM", "BTC-USD"}
