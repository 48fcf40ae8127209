"""The single consumer between the tick queue and the engine.

Sources only validate and enqueue; this is the one place that runs the engine,
so ticks are evaluated in arrival order, and replay and live share every step.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import structlog

from service.articles.tracker import AUTO_RULE_PREFIX, ArticleTracker
from service.config import Config
from service.errors import TickError
from service.models import AlertEvent, Article, ArticlePayload, RangeRule, Tick, format_published
from service.rules import RuleEngine
from service.rules.stale import StaleFeedWatch
from service.streams.queue import TickBatch, TickQueue
from service.streams.rejections import Rejections

# Ticks taken from the queue per engine call: large enough to amortise the
# call, small enough that alerts leave within a fraction of a millisecond.
BATCH_SIZE = 256

log = structlog.get_logger("service.pipeline")

AlertSink = Callable[[AlertEvent], None]
# Called after each batch with its ticks and the alerts they fired (delivery, the hub).
BatchListener = Callable[[Sequence[Tick], Sequence[AlertEvent]], None]


class TickProcessor:
    """Runs accepted ticks through the engine and hands each alert to the sinks.

    With an article tracker, each alert carries the article in effect for its
    symbol, and the engine watches the articles' levels as well (when auto
    levels are on): live, from the moment an article arrives
    (:meth:`add_article`); in replay, from the first tick at or after its
    publication.
    """

    def __init__(
        self,
        engine: RuleEngine,
        rejections: Rejections,
        sinks: Sequence[AlertSink] = (),
        *,
        tracker: ArticleTracker | None = None,
        listeners: Sequence[BatchListener] = (),
        stale: StaleFeedWatch | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.rejections = rejections
        self.sinks = list(sinks)
        self.listeners = list(listeners)
        self.tracker = tracker
        self.stale = stale
        self._clock_ns = clock_ns
        self.ticks = 0  # accepted and evaluated
        self.ticks_by_source: Counter[str] = Counter()  # the same, by the source that put them
        self.alerts = 0
        self.alerts_by: Counter[tuple[str, str]] = Counter()  # (symbol, kind)
        # Replay with auto levels: when the next article's rules take effect. (Attachment
        # needs no such list: it looks up the article in effect at each alert's time.)
        self._activations: list[int] = []
        if tracker is not None and tracker.auto_levels:
            if tracker.as_of_tick_time:
                self._activations = tracker.store.effective_times()
            else:
                self._set_rules(None)

    @classmethod
    def for_config(
        cls,
        config: Config,
        rejections: Rejections,
        sinks: Sequence[AlertSink],
        *,
        tracker: ArticleTracker | None = None,
        listeners: Sequence[BatchListener] = (),
    ) -> TickProcessor:
        """The engine of ``config``'s rules and settings: the same for ``run`` and ``replay``."""
        settings = config.engine
        engine = RuleEngine(
            config.rules,
            windows=settings.windows,
            bars=settings.bars,
            same_time=settings.same_time,
            price_band=settings.price_band_percent / 100,
            rebase_ticks=settings.price_band_rebase_ticks,
        )
        return cls(engine, rejections, sinks, tracker=tracker, listeners=listeners)

    def add_article(self, article: Article, *, received_ns: int) -> None:
        """A new article (or a new version of one) arrived: attach it and watch its levels."""
        if self.tracker is None:
            return
        changed = self.tracker.store.put(article, received_ns=received_ns)
        if changed and not self.tracker.as_of_tick_time:
            self._set_rules(None)

    def remove_article(self, source: str) -> None:
        """The article read from ``source`` is gone (its file was deleted)."""
        if self.tracker is None:
            return
        if self.tracker.store.remove(source) and not self.tracker.as_of_tick_time:
            self._set_rules(None)

    def process(
        self,
        ticks: Sequence[Tick],
        *,
        source: str = "pipeline",
        sources: Sequence[str] | None = None,
    ) -> list[AlertEvent]:
        """Evaluate ``ticks`` in order; return (and hand on) the alerts they fire.

        ``sources`` names the source of each tick (as a :class:`TickBatch`
        does); without it every tick is ``source``'s.
        """
        names = [source] * len(ticks) if sources is None else sources
        if not self._activations:
            return self._evaluate(ticks, names)
        alerts: list[AlertEvent] = []
        start = 0
        for index, tick in enumerate(ticks):
            if self._activations and tick.ts_ns >= self._activations[0]:
                alerts += self._evaluate(ticks[start:index], names[start:index])
                start = index
                while self._activations and self._activations[0] <= tick.ts_ns:
                    self._activations.pop(0)
                self._set_rules(tick.ts_ns)
        alerts += self._evaluate(ticks[start:], names[start:])
        return alerts

    def process_batch(self, batch: TickBatch) -> list[AlertEvent]:
        """:meth:`process` of what the queue handed over."""
        return self.process(batch.ticks, sources=batch.sources)

    def _set_rules(self, at_ns: int | None) -> None:
        assert self.tracker is not None
        if not self.tracker.auto_levels:
            return
        before = {rule.id for rule in self.engine.rules}
        rules = self.tracker.rules(at_ns)
        after = {rule.id for rule in rules}
        if before == after:
            return
        self.engine.set_rules(rules)
        log.info(
            "article_rules_changed",
            added=sorted(after - before),
            removed=sorted(before - after),
            rules=len(rules),
        )

    def _evaluate(self, ticks: Sequence[Tick], sources: Sequence[str]) -> list[AlertEvent]:
        if not ticks:
            return []
        rejected: list[tuple[Tick, TickError]] = []

        def reject(tick: Tick, error: TickError) -> None:
            rejected.append((tick, error))

        alerts = self.engine.on_ticks(ticks, on_reject=reject)
        by_source = self.ticks_by_source
        first = sources[0]
        if sources.count(first) == len(sources):
            by_source[first] += len(ticks)  # one source in the batch: the common case
        else:
            for name in sources:
                by_source[name] += 1
        if rejected:
            # Rejections come in tick order: one walk pairs each with its source.
            kept: list[Tick] = []
            pending = iter(rejected)
            next_rejected = next(pending, None)
            for tick, name in zip(ticks, sources, strict=True):
                if next_rejected is not None and tick is next_rejected[0]:
                    by_source[name] -= 1
                    self.rejections.record(
                        next_rejected[1], source=name, where=f"{tick.symbol} at {tick.at}"
                    )
                    next_rejected = next(pending, None)
                else:
                    kept.append(tick)
            ticks = kept
        self.ticks += len(ticks)
        if self.stale is not None and ticks:
            for symbol in self.stale.observe(ticks, self._clock_ns()):
                log.info("feed_resumed", symbol=symbol)
        return self._emit(ticks, alerts)

    def check_stale(self) -> list[AlertEvent]:
        """Fire ``stale_feed`` for the symbols that have gone quiet (called about once a second)."""
        if self.stale is None:
            return []
        now_ns = self._clock_ns()
        self.stale.watch({rule.symbol for rule in self.engine.rules}, now_ns)
        alerts = self.stale.check(now_ns)
        for alert in alerts:
            log.warning("feed_stale", symbol=alert.symbol, quiet_s=alert.level)
        return self._emit([], alerts)

    def _emit(self, ticks: Sequence[Tick], alerts: list[AlertEvent]) -> list[AlertEvent]:
        """Hand ``alerts`` to the sinks and the batch to the listeners."""
        if self.tracker is not None and alerts:
            alerts = [self.tracker.attach(alert) for alert in alerts]
        self.alerts += len(alerts)
        for alert in alerts:
            self.alerts_by[alert.symbol, alert.kind] += 1
            for sink in self.sinks:
                try:
                    sink(alert)
                except Exception:
                    # One broken sink must not stop the engine or starve the other sinks.
                    log.exception("alert_sink_failed", sink=_name_of(sink), alert_id=alert.id)
        for listener in self.listeners:
            try:
                listener(ticks, alerts)
            except Exception:
                log.exception(
                    "alert_sink_failed",
                    sink=_name_of(listener),
                    alert_ids=[alert.id for alert in alerts],
                )
        return alerts

    def levels(self, symbols: frozenset[str] | None) -> list[dict[str, object]]:
        """The levels being watched (of ``symbols``; ``None``: all), for dashboards and the API."""
        levels: list[dict[str, object]] = []
        for rule in self.engine.rules:
            if symbols is not None and rule.symbol not in symbols:
                continue
            sides = rule.sides() if isinstance(rule, RangeRule) else (rule,)
            origin = "article" if rule.id.startswith(AUTO_RULE_PREFIX) else "config"
            article = self._level_article(rule.symbol) if origin == "article" else None
            levels += [
                {
                    "rule": side.id,
                    "symbol": side.symbol,
                    "level": side.level,
                    "direction": side.direction,
                    "side": "support" if side.direction == "below" else "resistance",
                    "origin": origin,
                    "article": article,
                }
                for side in sides
            ]
        return levels

    def _level_article(self, symbol: str) -> dict[str, object] | None:
        """The article whose levels of ``symbol`` are being watched: its title and link."""
        article = None if self.tracker is None else self.tracker.store.latest(symbol)
        if article is None:
            return None
        return {"title": article.title, "url": article.url, "published": article.published}

    def articles(self, symbols: frozenset[str] | None) -> dict[str, ArticlePayload]:
        """The latest article per symbol (of ``symbols``; ``None``: all), as alerts carry it."""
        if self.tracker is None:
            return {}
        store = self.tracker.store
        wanted = store.symbols() if symbols is None else sorted(symbols)
        latest: dict[str, ArticlePayload] = {}
        for symbol in wanted:
            article = store.latest(symbol)
            if article is not None:
                latest[symbol] = article.attachment(symbol).to_dict()
        return latest


async def run_engine(queue: TickQueue, processor: TickProcessor) -> None:
    """Take ticks from ``queue`` in batches and process them, until cancelled."""
    while True:
        batch = await queue.get_batch(BATCH_SIZE)
        try:
            processor.process_batch(batch)
        finally:
            queue.task_done(len(batch.ticks))


def _name_of(sink: Callable[..., object]) -> str:
    return getattr(sink, "__qualname__", None) or type(sink).__name__


def log_alert(alert: AlertEvent) -> None:
    """The alert sink of the log: one ``alert_fired`` line per alert."""
    log.info(
        "alert_fired",
        headline=alert.headline(),
        symbol=alert.symbol,
        rule=alert.rule,
        kind=alert.kind,
        price_level=alert.level,  # "level" is the log level's key
        price=alert.price,
        at=alert.at,
        alert_id=alert.id,
        article=_article_label(alert),
    )


def _article_label(alert: AlertEvent) -> str | None:
    article = alert.article
    if article is None:
        return None
    return article.title or f"untitled, published {format_published(article.published_ns)}"
