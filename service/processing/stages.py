"""The engine task's own stages: arrivals, the article, counts, sinks, latency.

The journal's, the hub's and the channels' stages belong to their packages
(:class:`~service.delivery.recorder.AlertRecorder`,
:meth:`~service.hub.server.WebsocketHub.publish`,
:meth:`~service.delivery.workers.DeliveryWorkers.wake`); the composition root
puts them all in one list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import structlog

from service.articles.tracker import ArticleTracker
from service.models import AlertEvent, format_published
from service.processing.batch import Batch, Stage
from service.processing.live_view import LiveView
from service.rules.stale import StaleFeedWatch

log = structlog.get_logger("service.processing")


def watch_arrivals(
    stale: StaleFeedWatch, view: LiveView | None, clock_ns: Callable[[], int]
) -> Stage:
    """Note when each symbol last ticked (stale feeds, ages) and show new symbols in the view."""

    def arrivals(batch: Batch) -> Batch:
        if batch.ticks:
            known = len(stale)
            for symbol in stale.observe(batch.ticks, clock_ns()):
                log.info("feed_resumed", symbol=symbol)
            if view is not None and len(stale) != known:
                view.saw(stale.symbols())
        return batch

    return arrivals


def attach_articles(tracker: ArticleTracker) -> Stage:
    """Each alert with the article in effect for its symbol."""

    def attach(batch: Batch) -> Batch:
        if not batch.alerts:
            return batch
        return batch.with_alerts([tracker.attach(alert) for alert in batch.alerts])

    return attach


class AlertCounts:
    """Alerts fired, in all and by (symbol, kind): the metrics' and the stats' count."""

    def __init__(self) -> None:
        self.total = 0
        self.by: Counter[tuple[str, str]] = Counter()

    def __call__(self, batch: Batch) -> Batch:
        for alert in batch.alerts:
            self.by[alert.symbol, alert.kind] += 1
        self.total += len(batch.alerts)
        return batch


def log_alert(alert: AlertEvent) -> None:
    """The log's sink: one ``alert_fired`` line per alert."""
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


def each_alert(sink: Callable[[AlertEvent], None]) -> Stage:
    """A stage that hands every alert to ``sink`` (the log, a printer, a test's list).

    A sink that raises is logged (``alert_sink_failed``) and the walk goes on:
    a sink only watches.
    """
    name = getattr(sink, "__qualname__", None) or type(sink).__name__

    def stage(batch: Batch) -> Batch:
        for alert in batch.alerts:
            try:
                sink(alert)
            except Exception:
                log.exception("alert_sink_failed", sink=name, alert_id=alert.id)
        return batch

    return stage


def observe_latency(observe: Callable[[Sequence[AlertEvent], float], None]) -> Stage:
    """Time the alerts of a batch from its oldest tick's arrival (``observe(alerts, received)``)."""

    def latency(batch: Batch) -> Batch:
        if batch.alerts and batch.received is not None:
            observe(batch.alerts, batch.received)
        return batch

    return latency


def _article_label(alert: AlertEvent) -> str | None:
    article = alert.article
    if article is None:
        return None
    return article.title or f"untitled, published {format_published(article.published_ns)}"
