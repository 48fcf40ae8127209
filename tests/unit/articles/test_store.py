"""The article store and the tracker: which article is in effect, which rules articles make."""

from __future__ import annotations

from service.articles.settings import RuleDefaults
from service.articles.store import ArticleStore
from service.articles.tracker import ArticleTracker, auto_rule_id
from service.models import RangeRule
from tests.builders import article, at, level_rule


def test_latest_is_by_publication_not_by_arrival() -> None:
    store = ArticleStore()
    newer = article("b", 20, ("IWM", 255.0, "support"))
    older = article("a", 10, ("IWM", 250.0, "support"))
    assert store.put(newer, received_ns=at(100)) == {"IWM"}
    assert store.put(older, received_ns=at(101)) == set()  # older: nothing changes
    assert store.latest("IWM") is newer
    assert store.latest("IWM", at(15)) is older
    assert store.latest("IWM", at(5)) is None
    assert store.latest("SPX") is None
    assert store.articles() == [older, newer]


def test_an_article_is_for_the_symbols_it_gives_levels_for() -> None:
    store = ArticleStore()
    both = article("a", 10, ("RUT", 1900.0, "support"), ("SPX", 4900.0, "resistance"))
    assert store.put(both, received_ns=at(0)) == {"RUT", "SPX"}
    assert store.symbols() == ["RUT", "SPX"]
    assert store.latest("SPX") is both


def test_a_new_version_of_a_source_replaces_the_old_one() -> None:
    store = ArticleStore()
    store.put(article("a", 10, ("IWM", 255.0, "support")), received_ns=at(0))
    edited = article("a", 10, ("SPX", 4800.0, "support"))
    assert store.put(edited, received_ns=at(1)) == {"IWM", "SPX"}
    assert len(store) == 1
    assert store.latest("IWM") is None
    assert store.latest("SPX") is edited


def test_removing_a_source_falls_back_to_the_previous_article() -> None:
    store = ArticleStore()
    old = article("a", 10, ("IWM", 255.0, "support"))
    store.put(old, received_ns=at(0))
    store.put(article("b", 20, ("IWM", 250.0, "support")), received_ns=at(0))
    assert store.remove("b") == {"IWM"}
    assert store.latest("IWM") is old
    assert store.remove("missing") == set()


def test_an_undated_article_takes_effect_when_received() -> None:
    store = ArticleStore()
    dated = article("a", 10, ("IWM", 255.0, "support"))
    undated = article("b", None, ("IWM", 250.0, "support"))
    store.put(undated, received_ns=at(5))
    store.put(dated, received_ns=at(6))
    assert store.latest("IWM") is dated
    assert store.effective_times() == [at(5), at(10)]


DEFAULTS = RuleDefaults(confirm_ticks=2, hysteresis=0.5, cooldown_seconds=60)


def test_article_levels_become_rules_with_the_defaults() -> None:
    tracker = ArticleTracker(rule_defaults=DEFAULTS)
    tracker.store.put(
        article("a", 10, ("IWM", 255.0, "support"), ("IWM", 265.5, "resistance")),
        received_ns=at(0),
    )
    below, above = tracker.article_rules()
    assert (below.id, below.direction, below.level) == ("article:IWM:below:255", "below", 255.0)
    assert (above.id, above.direction, above.level) == ("article:IWM:above:265.5", "above", 265.5)
    assert (below.confirm_ticks, below.hysteresis, below.cooldown_seconds) == (2, 0.5, 60)


def test_hand_written_rules_win_over_article_levels_and_stay_first() -> None:
    hand = (
        level_rule(255.0, "below", rule_id="mine"),
        RangeRule(id="range", symbol="SPX", low=4800.0, high=4900.0),
    )
    tracker = ArticleTracker(hand_rules=hand, rule_defaults=DEFAULTS)
    tracker.store.put(
        article(
            "a",
            10,
            ("IWM", 255.0, "support"),
            ("IWM", 250.0, "support"),
            ("SPX", 4900.0, "resistance"),
        ),
        received_ns=at(0),
    )
    assert [rule.id for rule in tracker.rules()] == ["mine", "range", "article:IWM:below:250"]


def test_a_newer_article_replaces_the_rules_of_the_older_one() -> None:
    tracker = ArticleTracker(rule_defaults=DEFAULTS)
    tracker.store.put(article("a", 10, ("IWM", 255.0, "support")), received_ns=at(0))
    tracker.store.put(article("b", 20, ("IWM", 250.0, "support")), received_ns=at(0))
    assert [rule.id for rule in tracker.rules()] == ["article:IWM:below:250"]
    assert [rule.id for rule in tracker.rules(at(15))] == ["article:IWM:below:255"]
    assert tracker.rules(at(5)) == ()


def test_without_auto_levels_articles_make_no_rules() -> None:
    tracker = ArticleTracker(hand_rules=[level_rule()])
    tracker.store.put(article("a", 10, ("IWM", 250.0, "support")), received_ns=at(0))
    assert tracker.rules() == (level_rule(),)


def test_auto_rule_ids_are_stable_and_valid() -> None:
    assert auto_rule_id("BTC", "above", 100000.0) == "article:BTC:above:100000"
    assert auto_rule_id("SPX", "below", 4800.5) == "article:SPX:below:4800.5"
