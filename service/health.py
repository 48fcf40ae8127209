"""Observing the running service: one snapshot per component, and every view derived from it.

Readiness (``/readyz``), the Prometheus metrics (``/metrics``) and the
periodic stats log all read one :class:`ServiceSnapshot`, taken by
:meth:`Observer.snapshot`: a counter cannot appear in one view and be
missing from another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from service.articles.sources import ArticleIntake
from service.clock import Clock
from service.delivery.audience import Audience
from service.delivery.recorder import AlertRecorder
from service.delivery.workers import DeliveryWorkers
from service.errors import JournalError
from service.hub.server import HubStats, WebsocketHub
from service.journal.roles import Outbox, Probe
from service.metrics import MetricsState
from service.processing.engine_task import TickProcessor
from service.processing.stages import AlertCounts
from service.rules.stale import StaleFeedWatch
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from service.streams.source import Source, SourceSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSnapshot:
    ticks: int  # accepted and evaluated
    ticks_by_source: Mapping[str, int]
    # Ticks sent again after a restart that the restored engine had evaluated, by source.
    redelivered_by_source: Mapping[str, int] = field(default_factory=dict)
    # Ticks older than the end of a bar the watermark had closed (left out of bars).
    late_ticks: int = 0
    alerts: int
    alerts_by: Mapping[tuple[str, str], int]  # (symbol, kind)
    rejected: int
    rejected_by_reason: Mapping[str, int]
    queue_depth: int
    queue_size: int
    queue_full_waits: int
    last_tick_age_s: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySnapshot:
    pending: int
    by_channel: Mapping[str, Mapping[str, int]]  # channel -> status -> deliveries, all time
    outcomes: Mapping[tuple[str, str], int]  # (channel, status) -> attempts since start-up
    subscribers: int
    journal_failures: int
    holding: int  # alerts the journal refused, held in memory


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleSnapshot:
    """What this process is in a cluster (service.roles), and how that part is doing."""

    role: str = "all"
    shard: str = ""  # an engine's shard, "1/2"; "" unsharded
    # An engine on a shared journal: "standby" (another process runs the shard), "active",
    # "lost" (its lock's connection dropped: it stops); "running" otherwise.
    state: str = "running"
    following: bool | None = None  # a gateway's: listening to the journal's alerts
    alerts_followed: int = 0  # a gateway's: alerts read back from the journal and sent on
    foreign_ticks: int = 0  # an engine shard's: ticks of another shard's symbols, dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSnapshot:
    sources: Sequence[SourceSnapshot]
    engine: EngineSnapshot
    articles: int
    articles_rejected: int
    delivery: DeliverySnapshot
    hub: HubStats | None
    role: RoleSnapshot = field(default_factory=RoleSnapshot)


class Observer:
    """Takes the service's snapshot; readiness, metrics and stats are views of it."""

    def __init__(
        self,
        *,
        sources: Sequence[Source],
        processor: TickProcessor,
        counts: AlertCounts,
        rejections: Rejections,
        queue: TickQueue,
        stale: StaleFeedWatch,
        intake: ArticleIntake,
        outbox: Outbox,
        probe: Probe,
        audience: Audience,
        recorder: AlertRecorder,
        workers: DeliveryWorkers,
        hub: WebsocketHub | None,
        clock: Clock,
        role: Callable[[], RoleSnapshot] = RoleSnapshot,
    ) -> None:
        self.sources = sources
        self._role = role
        self._processor = processor
        self._counts = counts
        self._rejections = rejections
        self._queue = queue
        self._stale = stale
        self._intake = intake
        self._outbox = outbox
        self._probe = probe
        self._audience = audience
        self._recorder = recorder
        self._workers = workers
        self._hub = hub
        self._clock = clock

    def snapshot(self) -> ServiceSnapshot:
        processor = self._processor
        outbox = self._outbox
        return ServiceSnapshot(
            sources=[source.snapshot() for source in self.sources],
            engine=EngineSnapshot(
                ticks=processor.ticks,
                ticks_by_source=dict(processor.ticks_by_source),
                redelivered_by_source=dict(processor.redelivered),
                late_ticks=processor.engine.late_ticks(),
                alerts=self._counts.total,
                alerts_by=dict(self._counts.by),
                rejected=self._rejections.total,
                rejected_by_reason=dict(self._rejections.counts),
                queue_depth=self._queue.qsize(),
                queue_size=self._queue.maxsize,
                queue_full_waits=self._queue.full_waits,
                last_tick_age_s=self._stale.ages(self._clock.now_ns()),
            ),
            articles=self._intake.loaded,
            articles_rejected=self._intake.rejected.total(),
            delivery=DeliverySnapshot(
                pending=outbox.pending_count(),
                by_channel=_by_channel(outbox.delivery_counts()),
                outcomes=dict(self._workers.outcomes),
                subscribers=len(self._audience.subscribers),
                journal_failures=self._recorder.failures,
                holding=self._recorder.holding,
            ),
            hub=None if self._hub is None else self._hub.snapshot(),
            role=self._role(),
        )

    def readiness(self) -> list[str]:
        """Why the service cannot do its job now (``/readyz``); empty when it can."""
        reasons: list[str] = []
        try:
            self._probe.check_writable(now_ns=self._clock.now_ns())
        except JournalError as error:
            reasons.append(f"journal: {error}")
        return reasons + not_ready(self.snapshot())

    def metrics_state(self) -> MetricsState:
        """What ``/metrics`` exports, read at each scrape."""
        return metrics_of(self.snapshot())

    def stats(self) -> dict[str, object]:
        """The counters of the stats log (``pipeline_stats``, ``service_stopped``).

        ``lag_max_s`` is the longest a tick waited in the queue since the
        previous call; ``queue_full_waits`` counts the times a source found the
        queue full and had to wait (backpressure).
        """
        return stats_of(self.snapshot(), lag_max_s=self._queue.take_max_lag())


def not_ready(snapshot: ServiceSnapshot) -> list[str]:
    """The reasons, other than the journal's probe, the service is not ready."""
    reasons: list[str] = []
    role = snapshot.role
    if role.state == "standby":  # its sources are not started: nothing else to say
        return [f"engine shard {role.shard or '0/1'}: standby; another process runs it"]
    if role.state == "lost":
        reasons.append(f"engine shard {role.shard or '0/1'}: its lock is lost; stopping")
    if role.following is False:
        reasons.append("alert feed: not listening to the journal; connecting again")
    if snapshot.delivery.holding:
        reasons.append(
            f"journal: {snapshot.delivery.holding} alerts held in memory, not yet written"
        )
    for source in snapshot.sources:
        if source.problem is not None:
            reasons.append(f"source {source.name}: {source.problem}")
        elif not source.ready:
            reasons.append(f"source {source.name}: {source.state}")
    return reasons


def metrics_of(snapshot: ServiceSnapshot) -> MetricsState:
    engine, delivery = snapshot.engine, snapshot.delivery
    return MetricsState(
        ticks_by_source={s.name: engine.ticks_by_source.get(s.name, 0) for s in snapshot.sources},
        redelivered_by_source=engine.redelivered_by_source,
        late_ticks=engine.late_ticks,
        source_up={source.name: source.ready for source in snapshot.sources},
        rejected_by_reason=engine.rejected_by_reason,
        alerts_by=engine.alerts_by,
        deliveries_by=delivery.outcomes,
        delivery_pending=delivery.pending,
        last_tick_age_s=engine.last_tick_age_s,
        ws_clients=0 if snapshot.hub is None else snapshot.hub.clients,
        queue_depth=engine.queue_depth,
        articles=snapshot.articles,
        journal_failures=delivery.journal_failures,
        role=(snapshot.role.role, snapshot.role.shard, snapshot.role.state),
        alerts_followed=snapshot.role.alerts_followed,
        foreign_ticks=snapshot.role.foreign_ticks,
    )


def stats_of(snapshot: ServiceSnapshot, *, lag_max_s: float) -> dict[str, object]:
    engine, delivery = snapshot.engine, snapshot.delivery
    return {
        "ticks": engine.ticks,
        "alerts": engine.alerts,
        "rejected": engine.rejected,
        "rejected_by_reason": dict(engine.rejected_by_reason),
        "queue_depth": engine.queue_depth,
        "queue_size": engine.queue_size,
        "queue_full_waits": engine.queue_full_waits,
        "lag_max_s": round(lag_max_s, 6),
        "sources": {
            source.name: _source_stats(
                source,
                engine.ticks_by_source.get(source.name, 0),
                engine.redelivered_by_source.get(source.name, 0),
            )
            for source in snapshot.sources
        },
        "articles": snapshot.articles,
        "articles_rejected": snapshot.articles_rejected,
        "deliveries": {
            "pending": delivery.pending,
            "by_channel": {channel: dict(s) for channel, s in delivery.by_channel.items()},
            "subscribers": delivery.subscribers,
            "journal_failures": delivery.journal_failures,
        },
        "ws": None if snapshot.hub is None else dataclasses.asdict(snapshot.hub),
        "role": dataclasses.asdict(snapshot.role),
    }


def _source_stats(source: SourceSnapshot, ticks: int, redelivered: int) -> dict[str, object]:
    """``ticks``: what the engine accepted of the source's ticks (``received``: messages read).

    ``redelivered``: ticks sent again after a restart, already evaluated before it.
    """
    stats: dict[str, object] = {"ticks": ticks, "state": source.state}
    if redelivered:
        stats["redelivered"] = redelivered
    for name, value in (
        ("received", source.received),
        ("connections", source.connections),
        ("duplicates", source.duplicates),
        ("paused", source.paused),
    ):
        if value is not None:
            stats[name] = value
    return stats


def _by_channel(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (channel, status), count in counts.items():
        table.setdefault(channel, {})[status] = count
    return table
