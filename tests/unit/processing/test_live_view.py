"""What readers see of the engine: levels, latest articles and symbols, as of its last change."""

from __future__ import annotations

from service.articles.store import ArticleStore
from service.articles.tracker import auto_rule_id
from service.config import parse_config
from service.models import RangeRule
from service.processing.engine_task import TickProcessor
from service.processing.live_view import LiveView
from service.rules.settings import EngineConfig
from service.streams.rejections import Rejections
from tests.builders import article, at, level_rule, tick


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


def test_levels_show_each_rules_condition_basis_and_status_as_it_changes() -> None:
    rules = parse_config(
        """
[[rules]]
id = "once"
symbol = "IWM"
condition = "cross_below"
level = 255
frequency = "once"
[[rules]]
id = "sma"
symbol = "IWM"
condition = "cross_above"
level = 'sma(20, "5m")'
[[rules]]
id = "move"
symbol = "IWM"
condition = "moving_down"
window = "15m"
percent = 2
[[rules]]
id = "until"
symbol = "IWM"
condition = "greater_than"
level = 300
expires = 2026-02-02T14:31:00Z
"""
    ).rules
    view = LiveView()
    processor = TickProcessor.for_settings(EngineConfig(), rules, Rejections(), view=view)

    def shown() -> list[tuple[str, float | None, str, str | None, str]]:
        return [
            (lv["rule"], lv["level"], lv["condition"], lv["basis"], lv["status"])
            for lv in view.levels(None)
        ]

    assert shown() == [
        ("once", 255.0, "cross_below", None, "active"),
        ("sma", None, "cross_above", 'sma(20, "5m")', "active"),
        ("move", None, "moving_down", "moving down 2 % in 15m", "active"),
        ("until", 300.0, "greater_than", None, "active"),
    ]
    processor.process([tick(256.0, 0.0), tick(254.0, 1.0)])  # "once" fires: done
    assert [status for *_, status in shown()] == ["done", "active", "active", "active"]
    assert processor.pause("sma", paused=True)
    processor.process([tick(256.0, 61.0)])  # past "until"'s expiry
    assert [status for *_, status in shown()] == ["done", "paused", "active", "expired"]
