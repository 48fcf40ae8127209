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

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import structlog

from service.articles.tracker import ArticleTracker
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import TickError
from service.models import AlertEvent, Article, Receipt, Rule, Tick
from service.processing.batch import COMMIT_STAGE, Batch, Stages
from service.processing.checkpoint import EngineCheckpoint
from service.processing.live_view import LiveView
from service.rules import RuleEngine
from service.rules.engine import MarketOf
from service.rules.settings import EngineConfig, engine_of
from service.rules.stale import StaleFeedWatch
from service.streams.queue import TickBatch, TickQueue
from service.streams.rejections import Rejections

# Ticks taken from the queue per engine call: large enough to amortise the
# call, small enough that alerts leave within a fraction of a millisecond.
BATCH_SIZE = 256
# The stale-feed rule is checked this often (at most; more often for a short stale_seconds).
STALE_CHECK_S = 1.0
# While the journal refuses a commit, it is tried again this often.
JOURNAL_RETRY_S = 1.0
# With nothing waiting to be committed, the commit timer looks again this often.
COMMIT_CHECK_S = 0.02
# Later than any tick: finish() takes the watermark there.
END_OF_TIME = 2**63 - 1
# An engine shard remembers at most this many symbols' shards (then starts over).
MAX_SHARD_SYMBOLS = 100_000
# The watermark is carried on with the wall clock this often: a quiet symbol's bar closes
# at most this long after the lateness allowance has passed its end.
ADVANCE_EVERY_S = 0.05

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
        checkpoint: EngineCheckpoint | None = None,
        monotonic: Callable[[], float] | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self.engine = engine
        # An engine shard's: the symbols it watches (another shard's ticks and rules are not
        # its business). None: every symbol.
        self._owns = owns
        self._mine: set[str] = set()  # symbols seen, by whether this shard watches them
        self._theirs: set[str] = set()
        self.foreign_ticks = 0  # ticks of another shard's symbols, dropped
        # With a monotonic clock (a live run), the newest tick time and when it came:
        # what advance() carries on.
        self._monotonic = monotonic
        self._newest: tuple[int, float] | None = None
        self.rejections = rejections
        self.stages = stages if stages is not None else Stages()
        self.tracker = tracker
        self.view = view
        # With a checkpoint, the symbols each batch changes are noted for the next commit.
        self.checkpoint = checkpoint
        self.ticks = 0  # accepted and evaluated
        self.ticks_by_source: Counter[str] = Counter()  # the same, by the source that put them
        # Ticks sent again after a crash (evaluated before it, by the checkpoint restored).
        self.redelivered: Counter[str] = Counter()
        # Per symbol, the last tick the restored checkpoint had evaluated: until a newer
        # one comes, a tick not newer than it is one the broker sends again.
        self._restored_last: dict[str, tuple[int, float]] = {}
        # Replay with auto levels: when the next article's rules take effect. (Attachment
        # needs no such list: it looks up the article in effect at each alert's time.)
        self._activations: list[int] = []
        # The rules of alerts.toml, and those set through the rules API (set_stored_rules);
        # the articles' come from the tracker.
        self._hand_rules = engine.rules if tracker is None else tracker.hand_rules
        self._stored_rules: tuple[Rule, ...] = ()
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
        market_of: MarketOf | None = None,
    ) -> TickProcessor:
        """The engine of ``rules`` with ``settings``, no checkpoint: ``replay``'s, and tests'.

        ``run`` builds its engine with :func:`~service.rules.settings.engine_of`
        too, and gives the processor the engine's checkpoint.
        """
        engine = engine_of(settings, rules, market_of)
        return cls(engine, rejections, stages=stages, tracker=tracker, view=view)

    def restore(self, rows: Mapping[str, str], ticks: Sequence[str] = ()) -> None:
        """Take back a checkpoint's states and tick log (at start-up, before any tick)."""
        if self.checkpoint is None or not (rows or ticks):
            return
        self._restored_last = self.checkpoint.restore(rows, ticks)
        log.info("engine_state_restored", symbols=len(rows), log_entries=len(ticks))
        self._show()  # a rule paused or done before the restart shows as such

    def after_commit(self, alerts: Sequence[AlertEvent]) -> None:
        """Alerts a later commit stored (after the journal refused them): the rest of the walk."""
        if alerts:
            self.stages.run_after(COMMIT_STAGE, Batch((), alerts))

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
        receipts: Sequence[Receipt] = (),
    ) -> list[AlertEvent]:
        """Evaluate ``ticks`` in order, then walk each batch through the stages.

        Returns the alerts the stages let through (all the engine fired, when
        no stage keeps any back). ``sources`` names the source of each tick (as
        a :class:`TickBatch` does); without it every tick is ``source``'s.
        ``received`` is when the oldest tick was queued (for the latency);
        ``receipts`` go with the batch, to be settled by the commit covering it.
        """
        names = [source] * len(ticks) if sources is None else sources
        if not self._activations:
            return self._evaluate(ticks, names, received, receipts)
        alerts: list[AlertEvent] = []
        start = 0
        for index, tick in enumerate(ticks):
            if self._activations and tick.ts_ns >= self._activations[0]:
                alerts += self._evaluate(ticks[start:index], names[start:index], received, ())
                start = index
                while self._activations and self._activations[0] <= tick.ts_ns:
                    self._activations.pop(0)
                self._set_rules(tick.ts_ns)
        alerts += self._evaluate(ticks[start:], names[start:], received, receipts)
        return alerts

    def process_batch(self, batch: TickBatch) -> list[AlertEvent]:
        """:meth:`process` of what the queue handed over."""
        return self.process(
            batch.ticks, sources=batch.sources, received=batch.enqueued, receipts=batch.receipts
        )

    def emit(self, alerts: Sequence[AlertEvent]) -> list[AlertEvent]:
        """Walk alerts of no tick (a timer's) through the stages."""
        return list(self.stages(Batch((), alerts)).alerts)

    def set_stored_rules(self, rules: Sequence[Rule], *, commit: bool = True) -> None:
        """Watch ``rules`` (the rules API's) from now on, beside alerts.toml's and the articles'.

        Rules that stay keep their state, as :meth:`RuleEngine.set_rules` does;
        a changed rule is a new one. Between batches, so between ticks. With
        ``commit`` an empty batch walks the stages, so the journal commits the
        new states soon; at start-up, before the checkpoint is restored, not.
        """
        self._stored_rules = tuple(rules)
        if self._set_rules(None):
            self._show()
            if commit:
                self.stages(Batch((), ()))

    def _set_rules(self, at_ns: int | None) -> bool:
        """The rules in effect at ``at_ns`` to the engine; ``True`` when they changed."""
        articles: Sequence[Rule] = ()
        if self.tracker is not None and self.tracker.auto_levels:
            articles = self.tracker.article_rules(at_ns)
        rules = (*self._hand_rules, *self._stored_rules, *articles)
        owns = self._owns
        if owns is not None:
            rules = tuple(rule for rule in rules if owns(rule.symbol))
        if rules == self.engine.rules:
            return False
        before = {rule.id for rule in self.engine.rules}
        after = {rule.id for rule in rules}
        self.engine.set_rules(rules)
        if self.checkpoint is not None:
            self.checkpoint.mark_all()
        log.info(
            "rules_changed",
            added=sorted(after - before),
            removed=sorted(before - after),
            rules=len(rules),
        )
        return True

    def _show(self) -> None:
        self.engine.status_changed.clear()
        if self.view is not None:
            self.view.refresh(
                self.engine.rules,
                None if self.tracker is None else self.tracker.store,
                self.engine.status,
                frozenset(rule.id for rule in self._stored_rules),
            )

    def advance(self, monotonic_s: float) -> list[AlertEvent]:
        """Carry the feed's clock on to now: close the bars of quiet symbols that have ended.

        The feed's clock is the newest tick's time plus the time since it
        arrived, so the watermark moves on while every symbol is quiet,
        whatever the offset between the feed's clock and this machine's.
        """
        if self._newest is None:
            return []
        ts_ns, arrived_s = self._newest
        return self._advance(ts_ns + round((monotonic_s - arrived_s) * 1e9))

    def finish(self) -> list[AlertEvent]:
        """The input is over (the end of a replayed file): time passes every bar, which closes.

        A live run's clock does the same for a quiet symbol, ``lateness_ms``
        after its bar's end, so a replay gives the alerts the live run gave.
        """
        return self._advance(END_OF_TIME)

    def _advance(self, clock_ns: int) -> list[AlertEvent]:
        """The engine's clock is ``clock_ns``: walk the alerts of what closed or expired."""
        alerts = self.engine.advance(clock_ns)
        if self.engine.status_changed:
            self._show()
        return self.emit(alerts) if alerts else []

    def pause(self, rule_id: str, *, paused: bool) -> bool:
        """Pause or resume the rule ``rule_id``; ``False`` if no rule has that id."""
        found = self.engine.pause(rule_id, paused=paused)
        if found:
            log.info("rule_paused" if paused else "rule_resumed", rule=rule_id)
            self._show()
            # An empty batch through the stages: the journal's commits the change soon.
            self.stages(Batch((), ()))
        return found

    def _evaluate(
        self,
        ticks: Sequence[Tick],
        sources: Sequence[str],
        received: float | None,
        receipts: Sequence[Receipt],
    ) -> list[AlertEvent]:
        if self._owns is not None and ticks:
            ticks, sources = self._drop_foreign(ticks, sources)
        if self._restored_last and ticks:
            ticks, sources = self._drop_redelivered(ticks, sources)
        if not ticks:
            if receipts:  # ticks sent again, all of them: their receipts are settled all the same
                return list(self.stages(Batch((), (), received, receipts)).alerts)
            return []
        if self.checkpoint is not None:
            self.checkpoint.log(ticks)
        rejected: list[tuple[Tick, TickError]] = []

        def reject(tick: Tick, error: TickError) -> None:
            rejected.append((tick, error))

        alerts = self.engine.on_ticks(ticks, on_reject=reject)
        if self._monotonic is not None:
            newest = max(tick.ts_ns for tick in ticks)
            if self._newest is None or newest >= self._newest[0]:
                self._newest = (newest, self._monotonic())
        if self.engine.status_changed:
            self._show()
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
        if not ticks and not alerts and not receipts:
            return []
        return list(self.stages(Batch(ticks, alerts, received, receipts)).alerts)

    def _drop_foreign(
        self, ticks: Sequence[Tick], sources: Sequence[str]
    ) -> tuple[Sequence[Tick], Sequence[str]]:
        """The ticks of this shard's symbols (a topic filter may bring others')."""
        owns = self._owns
        assert owns is not None
        # One set of the batch's symbols, against the ones seen before: no call a tick.
        seen = {tick.symbol for tick in ticks}
        theirs = self._theirs
        new = seen - self._mine - theirs
        if new:
            if len(self._mine) + len(theirs) + len(new) > MAX_SHARD_SYMBOLS:
                self._mine.clear()  # a feed of endless names: start over, bounded
                theirs.clear()
                new = seen
            for symbol in new:
                (self._mine if owns(symbol) else theirs).add(symbol)
        if theirs.isdisjoint(seen):
            return ticks, sources
        kept = [
            (tick, source)
            for tick, source in zip(ticks, sources, strict=True)
            if tick.symbol not in theirs
        ]
        self.foreign_ticks += len(ticks) - len(kept)
        return [tick for tick, _ in kept], [source for _, source in kept]

    def _drop_redelivered(
        self, ticks: Sequence[Tick], sources: Sequence[str]
    ) -> tuple[list[Tick], list[str]]:
        """The ticks, less those the restored checkpoint had evaluated already."""
        last = self._restored_last
        kept: list[Tick] = []
        kept_sources: list[str] = []
        for tick, source in zip(ticks, sources, strict=True):
            seen = last.get(tick.symbol)
            if seen is not None:
                ts_ns, price = seen
                if tick.ts_ns < ts_ns or (tick.ts_ns == ts_ns and tick.price == price):
                    self.redelivered[source] += 1
                    continue
                del last[tick.symbol]  # a new tick: from here on, time order as usual
            kept.append(tick)
            kept_sources.append(source)
        return kept, kept_sources


class Committer(Protocol):
    """The stage that commits (the journal's), as the engine task drives it between batches."""

    failing: bool  # the last commit was refused

    def due_in(self) -> float | None:
        """Seconds until waiting ticks must be committed (``None``: nothing waits)."""
        ...

    def commit(self) -> Sequence[AlertEvent]:
        """Commit what waits; return the alerts it stored now."""
        ...


async def run_engine(
    queue: TickQueue,
    processor: TickProcessor,
    committer: Committer | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Take ticks from ``queue`` in batches and process them, until cancelled.

    With a ``committer``, a timer beside the loop commits the ticks that wait
    when they are due, even if no more come; while the journal refuses the
    commit, no tick is taken (the queue fills, the sources wait, nothing is
    acknowledged) and the timer tries again every :data:`JOURNAL_RETRY_S`;
    and the last commit is made on the way out.
    """
    if committer is None:
        while True:
            await _process_next(queue, processor)
    writable = asyncio.Event()
    timer = asyncio.get_running_loop().create_task(
        _commit_when_due(processor, committer, clock, writable), name="engine:commit"
    )
    try:
        while True:
            if committer.failing:
                writable.clear()
                waiting = asyncio.ensure_future(writable.wait())
                try:
                    await asyncio.wait([waiting, timer], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiting.cancel()
                if timer.done():
                    timer.result()  # the timer's failure is the engine's
                    raise RuntimeError("the engine's commit timer ended")
            await _process_next(queue, processor)
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
        processor.after_commit(committer.commit())


async def _process_next(queue: TickQueue, processor: TickProcessor) -> None:
    batch = await queue.get_batch(BATCH_SIZE)
    try:
        processor.process_batch(batch)
    finally:
        queue.task_done(batch.taken)


async def _commit_when_due(
    processor: TickProcessor, committer: Committer, clock: Clock, writable: asyncio.Event
) -> None:
    """Commit the ticks that wait when they are due; while refused, try again now and then."""
    while True:
        if committer.failing:
            await clock.sleep(JOURNAL_RETRY_S)
            processor.after_commit(committer.commit())
            if not committer.failing:
                writable.set()
            continue
        due = committer.due_in()
        if due is not None and due <= 0:
            processor.after_commit(committer.commit())
            continue
        await clock.sleep(COMMIT_CHECK_S if due is None else max(due, 0.0005))


async def advance_watermark(processor: TickProcessor, *, clock: Clock = SYSTEM_CLOCK) -> None:
    """Carry the engine's watermark on with the wall clock, so quiet symbols' bars close."""
    while True:
        await clock.sleep(ADVANCE_EVERY_S)
        processor.advance(clock.monotonic())


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
    if alerts and processor.checkpoint is not None:
        processor.checkpoint.mark(alert.symbol for alert in alerts)
    return processor.emit(alerts) if alerts else []
