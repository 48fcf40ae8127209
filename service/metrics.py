"""Prometheus metrics of the running service (``GET /metrics``).

Counters the hot path already keeps (ticks per source, rejections, alerts,
delivery outcomes) are read when Prometheus scrapes, by one collector, so
exporting costs the engine nothing. Only the tick-to-alert latency is a
histogram observed as alerts fire, and alerts are rare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.models import AlertEvent

# Tick received → alert journaled and handed to the channels. The engine's share is
# microseconds; the rest is queueing and the journal's fsync.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsState:
    """What the collector reads at each scrape."""

    ticks_by_source: Mapping[str, int]
    source_up: Mapping[str, bool]
    rejected_by_reason: Mapping[str, int]
    alerts_by: Mapping[tuple[str, str], int]  # (symbol, kind)
    deliveries_by: Mapping[tuple[str, str], int]  # (channel, status)
    delivery_pending: int
    last_tick_age_s: Mapping[str, float]
    ws_clients: int
    queue_depth: int
    articles: int
    journal_failures: int = 0
    redelivered_by_source: Mapping[str, int] = field(default_factory=dict)
    late_ticks: int = 0
    role: tuple[str, str, str] = ("all", "", "running")  # role, shard, state
    alerts_followed: int = 0
    foreign_ticks: int = 0


class ServiceMetrics:
    """The service's registry: the latency histogram, and a collector over its counters.

    Made first (the stages time alerts into it), then given what to read at
    each scrape with :meth:`watch`.
    """

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.registry = CollectorRegistry(auto_describe=True)
        self.tick_to_alert = Histogram(
            "strykr_tick_to_alert_seconds",
            "From the service receiving the tick that fired an alert (at most: the oldest "
            "tick of its batch) to the alert being journaled and handed to the channels.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch(self, state: Callable[[], MetricsState]) -> None:
        """Export what ``state()`` says, read at each scrape."""
        self.registry.register(_StateCollector(state))

    def observe_alerts(self, alerts: Sequence[AlertEvent], received_monotonic: float) -> None:
        """Record the latency of market alerts fired by ticks received at ``received_monotonic``."""
        elapsed = self._monotonic() - received_monotonic
        for alert in alerts:
            if alert.kind != "stale_feed":
                self.tick_to_alert.observe(elapsed)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(
        self, state: Callable[[], MetricsState], *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self._state = state

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families are built per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        yield _counter(
            "strykr_ticks", "Ticks accepted, by source.", ["source"], state.ticks_by_source
        )
        yield _counter(
            "strykr_ticks_redelivered",
            "Ticks sent again after a restart that the restored engine had evaluated, by source.",
            ["source"],
            state.redelivered_by_source,
        )
        yield _counter(
            "strykr_ticks_rejected",
            "Ticks rejected at the edge or by the engine, by reason.",
            ["reason"],
            state.rejected_by_reason,
        )
        yield _counter(
            "strykr_alerts",
            "Alerts fired, by symbol and kind.",
            ["symbol", "kind"],
            state.alerts_by,
        )
        yield _counter(
            "strykr_deliveries",
            "Delivery attempts' outcomes since start-up, by channel and status "
            "(sent, failed: to be retried, dead, cancelled).",
            ["channel", "status"],
            state.deliveries_by,
        )
        yield GaugeMetricFamily(
            "strykr_delivery_pending",
            "Deliveries waiting in the journal (new or to be retried).",
            value=state.delivery_pending,
        )
        yield _gauge(
            "strykr_last_tick_age_seconds",
            "Seconds since each symbol's last tick was received.",
            ["symbol"],
            state.last_tick_age_s,
        )
        yield GaugeMetricFamily(
            "strykr_ws_clients",
            "Dashboards connected to the websocket hub.",
            value=state.ws_clients,
        )
        yield _gauge(
            "strykr_source_up",
            "1 when a tick source is connected (or replaying), 0 otherwise.",
            ["source"],
            {name: 1.0 if up else 0.0 for name, up in state.source_up.items()},
        )
        yield GaugeMetricFamily(
            "strykr_queue_depth", "Ticks waiting for the engine.", value=state.queue_depth
        )
        yield GaugeMetricFamily(
            "strykr_articles", "Articles loaded (directory and feed).", value=state.articles
        )
        yield CounterMetricFamily(
            "strykr_journal_failures",
            "Batches of alerts the journal refused (held in memory and retried).",
            value=state.journal_failures,
        )
        yield CounterMetricFamily(
            "strykr_ticks_late",
            "Ticks older than the end of a bar the watermark had closed: seen by tick rules, "
            "left out of bars ([engine] lateness_ms).",
            value=state.late_ticks,
        )
        role = GaugeMetricFamily(
            "strykr_role",
            "1, labelled with what this process runs (service.roles), its engine shard and "
            "the shard's state (active, standby, lost; running when not an engine on a lock).",
            labels=["role", "shard", "state"],
        )
        role.add_metric(list(state.role), 1.0)
        yield role
        yield CounterMetricFamily(
            "strykr_alerts_followed",
            "A gateway's: alerts read back from the shared journal and sent to dashboards.",
            value=state.alerts_followed,
        )
        yield CounterMetricFamily(
            "strykr_ticks_other_shard",
            "An engine shard's: ticks of symbols another shard watches, dropped.",
            value=state.foreign_ticks,
        )


def _counter(
    name: str,
    doc: str,
    labels: list[str],
    values: Mapping[str, int] | Mapping[tuple[str, str], int],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric([key] if isinstance(key, str) else list(key), value)
    return family


def _gauge(
    name: str, doc: str, labels: list[str], values: Mapping[str, float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
