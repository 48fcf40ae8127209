"""The engine task: what it counts of each source's ticks, what it rejects, how it follows
articles, and the stages every batch walks."""

from __future__ import annotations

from service.articles.settings import RuleDefaults
from service.articles.tracker import ArticleTracker
from service.processing.batch import Stages
from service.processing.engine_task import TickProcessor
from service.processing.stages import attach_articles
from service.rules import RuleEngine
from service.streams.rejections import Rejections
from tests.builders import article, at, level_rule, tick


def test_processor_counts_only_accepted_ticks_by_their_source() -> None:
    rejections = Rejections()
    processor = TickProcessor(RuleEngine([level_rule()], price_band=0.2), rejections)
    ticks = [tick(256.0, 1), tick(255.0, 0), tick(1.0, 2), tick(254.0, 3), tick(254.0, 3)]
    sources = ["broker", "feed", "feed", "broker", "replay"]
    alerts = processor.process(ticks, sources=sources)
    assert [alert.price for alert in alerts] == [254.0]
    assert dict(processor.ticks_by_source) == {"broker": 2, "feed": 0, "replay": 1}
    assert processor.ticks == 3
    assert dict(rejections.counts) == {"out_of_order": 1, "price_implausible": 1}
    assert rejections.first["out_of_order"].startswith("feed IWM at 2026-02-02T14:30:00.000Z: ")


def test_processor_without_sources_counts_every_tick_as_the_one_source() -> None:
    processor = TickProcessor(RuleEngine([level_rule()]), Rejections())
    processor.process([tick(256.0, 1), tick(254.0, 0)], source="file")
    assert dict(processor.ticks_by_source) == {"file": 1}


def attaching(engine: RuleEngine, tracker: ArticleTracker) -> TickProcessor:
    """A processor whose batches get their article attached, as the service's do."""
    stages = Stages([("attach_articles", attach_articles(tracker))])
    return TickProcessor(engine, Rejections(), stages=stages, tracker=tracker)


def test_replay_attaches_the_article_published_before_each_alert() -> None:
    tracker = ArticleTracker(as_of_tick_time=True)
    tracker.store.put(article("old", 0, ("IWM", 255.0, "support"), title="Old"), received_ns=at(0))
    tracker.store.put(article("new", 25, ("IWM", 255.0, "support"), title="New"), received_ns=at(0))
    processor = attaching(RuleEngine([level_rule()]), tracker)
    ticks = [tick(256, 0), tick(254, 10), tick(256, 20), tick(254, 30)]
    alerts = processor.process(ticks)
    assert [alert.article.title if alert.article else None for alert in alerts] == ["Old", "New"]


def test_replay_starts_watching_an_article_level_when_it_is_published() -> None:
    tracker = ArticleTracker(rule_defaults=RuleDefaults(), as_of_tick_time=True)
    tracker.store.put(article("a", 15, ("IWM", 255.0, "support")), received_ns=at(0))
    processor = attaching(RuleEngine(), tracker)
    # Before 15 s no rule watches 255; the rule arms at 20 s and fires at 30 s.
    ticks = [tick(256, 0), tick(254, 10), tick(256, 20), tick(254, 30)]
    alerts = processor.process(ticks)
    assert [(alert.rule, alert.ts_ns) for alert in alerts] == [("article:IWM:below:255", at(30))]
    assert alerts[0].article is not None


def test_live_article_rules_follow_the_store() -> None:
    tracker = ArticleTracker(rule_defaults=RuleDefaults())
    processor = attaching(RuleEngine(), tracker)
    processor.add_article(article("a", 10, ("IWM", 255.0, "support")), received_ns=at(0))
    assert [rule.id for rule in processor.engine.rules] == ["article:IWM:below:255"]
    processor.remove_article("a")
    assert processor.engine.rules == ()


def test_live_alert_without_an_article_has_none() -> None:
    tracker = ArticleTracker()
    processor = attaching(RuleEngine([level_rule()]), tracker)
    (alert,) = processor.process([tick(256, 0), tick(254, 1)])
    assert alert.article is None


def test_an_engine_shard_watches_and_evaluates_its_own_symbols_only() -> None:
    hand = [level_rule(), level_rule(480.0, rule_id="q-hand", symbol="QQQ")]
    tracker = ArticleTracker(hand_rules=hand, rule_defaults=RuleDefaults())
    stages = Stages([("attach_articles", attach_articles(tracker))])
    processor = TickProcessor(
        RuleEngine(hand[:1]),
        Rejections(),
        stages=stages,
        tracker=tracker,
        owns=lambda symbol: symbol == "IWM",
    )
    # alerts.toml's, an article's and the API's rules of another shard's symbol are not its.
    processor.add_article(
        article("a", 10, ("IWM", 250.0, "support"), ("QQQ", 500.0, "support")), received_ns=at(0)
    )
    processor.set_stored_rules([level_rule(490.0, rule_id="q", symbol="QQQ")])
    assert sorted(rule.id for rule in processor.engine.rules) == ["article:IWM:below:250", "r"]
    ticks = [tick(256, 0), tick(501, 0, symbol="QQQ"), tick(254, 1), tick(489, 2, symbol="QQQ")]
    alerts = processor.process(ticks, source="feed")
    assert [(alert.symbol, alert.rule) for alert in alerts] == [("IWM", "r")]
    assert processor.foreign_ticks == 2
    assert dict(processor.ticks_by_source) == {"feed": 2}
