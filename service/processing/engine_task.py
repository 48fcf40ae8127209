"""The engine task: the one consumer of the tick queue, and what it keeps of its ticks.

Sources only validate and enqueue; this is the one place that runs the
engine, so ticks are evaluated in arrival order, and replay and live share
every step. Each batch the engine took in then walks the stages
(:mod:`~service.processing.batch`) in the same step of the event loop: the
alerts are journaled before the loop runs anything else. That is a
deliberate trade-off (write before send, in order) that costs the engine the
journal's fsync when a batch fires alerts, which alerts rarely do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import structlog

from service.articles.tracker import ArticleTracker
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import TickError
from service.models import AlertEvent, Article, Rule, Tick
from service.processing.batch import Batch, Stages
from service.processing.live_view import LiveView
from service.rules import RuleEngine
from service.rules.settings import EngineConfig
from service.rules.stale import StaleFeedWatch
from service.streams.queue import TickBatch, TickQueue
from service.streams.rejections import Rejections

# Ticks taken from the queue per engine call: large enough to amortise the
# call, small enough that alerts leave within a fraction of a millisecond.
BATCH_SIZE = 256
# The stale-feed rule is checked this often (at most; more often for a short stale_seconds).
STALE_CHECK_S = 1.0

log = structlog.get_logger("service.processing")


class TickProcessor:
    """Runs ticks through the engine, then the batch through the stages.

    With an article tracker the engine also watches the articles' levels
    (when auto levels are on): live, from the moment an article arrives
    (:meth:`add_article`); in replay, from the first tick at or after its
    publication. With a live view, every change of rules or articles is
    shown there.
    """

    def __init__(
        self,
        engine: RuleEngine,
        rejections: Rejections,
        *,
        stages: Stages | None = None,
        tracker: ArticleTracker | None = None,
        view: LiveView | None = None,
    ) -> None:
        self.engine = engine
        self.rejections = rejections
        self.stages = stages if stages is not None else Stages()
        self.tracker = tracker
        self.view = view
        self.ticks = 0  # accepted and evaluated
        self.ticks_by_source: Counter[str] = Counter()  # the same, by the source that put them
        # Replay with auto levels: when the next article's rules take effect. (Attachment
        # needs no such list: it looks up the article in effect at each alert's time.)
        self._activations: list[int] = []
        if tracker is not None and tracker.auto_levels:
            if tracker.as_of_tick_time:
                self._activations = tracker.store.effective_times()
            else:
                self._set_rules(None)
        self._show()

    @classmethod
    def for_settings(
        cls,
        settings: EngineConfig,
        rules: Sequence[Rule],
        rejections: Rejections,
        *,
        stages: Stages | None = None,
        tracker: ArticleTracker | None = None,
        view: LiveView | None = None,
    ) -> TickProcessor:
        """The engine of ``rules`` with ``settings``: the same for ``run`` and ``replay``."""
        engine = RuleEngine(
            rules,
            same_time=settings.same_time,
            price_band=settings.price_band_percent / 100,
            rebase_ticks=settings.price_band_rebase_ticks,
        )
        return cls(engine, rejections, stages=stages, tracker=tracker, view=view)

    def add_article(self, article: Article, *, received_ns: int) -> None:
        """A new article (or a new version of one) arrived: attach it and watch its levels."""
        if self.tracker is None:
            return
        changed = self.tracker.store.put(article, received_ns=received_ns)
        if changed and not self.tracker.as_of_tick_time:
            self._set_rules(None)
        self._show()

    def remove_article(self, source: str) -> None:
        """The article read from ``source`` is gone (its file was deleted)."""
        if self.tracker is None:
            return
        if self.tracker.store.remove(source) and not self.tracker.as_of_tick_time:
            self._set_rules(None)
        self._show()

    def process(
        self,
        ticks: Sequence[Tick],
        *,
        source: str = "pipeline",
        sources: Sequence[str] | None = None,
        received: float | None = None,
    ) -> list[AlertEvent]:
        """Evaluate ``ticks`` in order, then walk each batch through the stages.

        Returns the alerts the stages let through (all the engine fired, when
        no stage keeps any back). ``sources`` names the source of each tick (as
        a :class:`TickBatch` does); without it every tick is ``source``'s.
        ``received`` is when the oldest tick was queued (for the latency).
        """
        names = [source] * len(ticks) if sources is None else sources
        if not self._activations:
            return self._evaluate(ticks, names, received)
        alerts: list[AlertEvent] = []
        start = 0
        for index, tick in enumerate(ticks):
            if self._activations and tick.ts_ns >= self._activations[0]:
                alerts += self._evaluate(ticks[start:index], names[start:index], received)
                start = index
                while self._activations and self._activations[0] <= tick.ts_ns:
                    self._activations.pop(0)
                self._set_rules(tick.ts_ns)
        alerts += self._evaluate(ticks[start:], names[start:], received)
        return alerts

    def process_batch(self, batch: TickBatch) -> list[AlertEvent]:
        """:meth:`process` of what the queue handed over."""
        return self.process(batch.ticks, sources=batch.sources, received=batch.enqueued)

    def emit(self, alerts: Sequence[AlertEvent]) -> list[AlertEvent]:
        """Walk alerts of no tick (a timer's) through the stages."""
        return list(self.stages(Batch((), alerts)).alerts)

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

    def _show(self) -> None:
        if self.view is not None:
            self.view.refresh(
                self.engine.rules, None if self.tracker is None else self.tracker.store
            )

    def _evaluate(
        self, ticks: Sequence[Tick], sources: Sequence[str], received: float | None
    ) -> list[AlertEvent]:
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
        if not ticks and not alerts:
            return []
        return list(self.stages(Batch(ticks, alerts, received)).alerts)


async def run_engine(queue: TickQueue, processor: TickProcessor) -> None:
    """Take ticks from ``queue`` in batches and process them, until cancelled."""
    while True:
        batch = await queue.get_batch(BATCH_SIZE)
        try:
            processor.process_batch(batch)
        finally:
            queue.task_done(len(batch.ticks))


async def watch_stale(
    processor: TickProcessor, stale: StaleFeedWatch, *, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Fire ``stale_feed`` for the symbols that go quiet, checking about once a second."""
    every_s = min(STALE_CHECK_S, stale.stale_seconds / 4)
    while True:
        await clock.sleep(every_s)
        check_stale(processor, stale, now_ns=clock.now_ns())


def check_stale(
    processor: TickProcessor, stale: StaleFeedWatch, *, now_ns: int
) -> list[AlertEvent]:
    """One check: the quiet symbols' alerts, walked through the stages."""
    stale.watch({rule.symbol for rule in processor.engine.rules}, now_ns)
    alerts = stale.check(now_ns)
    for alert in alerts:
        log.warning("feed_stale", symbol=alert.symbol, quiet_s=alert.level)
    return processor.emit(alerts) if alerts else []
