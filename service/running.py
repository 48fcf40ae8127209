"""The built service at work: its parts, its tasks, the order they stop in, and ``serve``.

:class:`Service` holds the parts :func:`service.app.build` wired. Its
:meth:`~Service.run` opens the resources (the journal, the servers' sockets)
in one ``AsyncExitStack``, runs the tasks of :func:`tasks` under
:mod:`service.lifecycle`'s supervision, and stops them in the order of
:func:`shutdown`: the queue takes no more ticks, the engine evaluates and
commits what it holds (acknowledging it to the sources), the sources close
their connections politely, the delivery workers finish the sends in hand,
then the edges close; within 5 s in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field

import structlog

from service.api.server import HttpServer
from service.articles.sources import ArticleDirectory, ArticleFeed, ArticleIntake
from service.articles.tracker import ArticleTracker
from service.clock import Clock
from service.config import Config
from service.delivery.audience import Audience
from service.delivery.email import EmailSender
from service.delivery.links import Links
from service.delivery.mqtt_out import MqttOutSender
from service.delivery.price_relay import PriceRelay
from service.delivery.recorder import AlertRecorder
from service.delivery.workers import DeliveryWorkers
from service.errors import JournalError
from service.health import Observer
from service.hub.server import WebsocketHub
from service.journal.alert_feed import AlertFeed
from service.journal.roles import Journal
from service.journal.shard_lease import ShardLease
from service.journal.stored_rules import rules_of
from service.lifecycle import Step, Task
from service.lifecycle import run as run_tasks
from service.metrics import ServiceMetrics
from service.processing.engine_task import (
    TickProcessor,
    advance_watermark,
    run_engine,
    watch_stale,
)
from service.processing.live_view import LiveView
from service.processing.stages import AlertCounts
from service.roles import Role
from service.rules.stale import StaleFeedWatch
from service.streams.price_feed import PriceFeed
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from service.streams.replay import ReplaySource
from service.streams.source import Source

# Stopping: the queue is closed, and the engine gets DRAIN_TIMEOUT_S for what it
# holds, then commits (acknowledging it); the sources then get SOURCE_CLOSE_GRACE_S
# to close their connections politely (an MQTT DISCONNECT, a websocket close)
# before they are cancelled again; the delivery workers finish the sends in hand
# within DELIVERY_GRACE_S; the hub and MQTT out close within EDGE_CLOSE_GRACE_S.
SOURCE_CLOSE_GRACE_S = 1.5
DRAIN_TIMEOUT_S = 2.0
DELIVERY_GRACE_S = 1.0
EDGE_CLOSE_GRACE_S = 1.0

log = structlog.get_logger("service.running")

# The processes of a cluster read the subscribers and the rules set through the API
# again this often (the API process changes them).
AUDIENCE_RELOAD_S = 1.0
RULES_RELOAD_S = 1.0


@dataclass(kw_only=True)
class Service:
    """Every part of the running service, as :func:`build` wired them."""

    config: Config
    clock: Clock
    journal: Journal
    rejections: Rejections
    queue: TickQueue
    sources: list[Source]
    view: LiveView
    tracker: ArticleTracker
    processor: TickProcessor
    stale: StaleFeedWatch
    counts: AlertCounts
    intake: ArticleIntake
    article_sources: list[ArticleDirectory | ArticleFeed]
    audience: Audience
    links: Links
    recorder: AlertRecorder
    workers: DeliveryWorkers
    email: EmailSender | None
    mqtt_out: MqttOutSender | None
    hub: WebsocketHub | None
    metrics: ServiceMetrics
    observer: Observer
    http: HttpServer | None = None
    role: Role = "all"
    # An engine on a shared journal: the shard's lock, taken before the engine starts.
    lease: ShardLease | None = None
    # A gateway: the alerts the engines commit, for its hub.
    feed: AlertFeed | None = None
    # In a cluster, the prices of an engine's symbols for the gateways, and a gateway's of them.
    price_relay: PriceRelay | None = None
    price_feed: PriceFeed | None = None
    _resources: contextlib.AsyncExitStack = field(
        default_factory=contextlib.AsyncExitStack, init=False, repr=False
    )
    _opened: bool = field(default=False, init=False)

    async def open(self) -> None:
        """Open the journal and start listening (hub, then HTTP): what is taken stops start-up.

        An engine that waits for its shard's lock restores its state in :meth:`run`,
        once the lock is its own.
        """
        if self._opened:
            return
        async with contextlib.AsyncExitStack() as opening:
            self.journal.open()
            opening.callback(self.journal.close)
            self.audience.reload()  # the subscribers of the API, stored in the journal
            if self.role != "delivery" and self.lease is None:
                self._restore()
            if self.feed is not None:
                self.feed.start()  # what was stored before: clients resume it with since
            if self.hub is not None:
                await self.hub.start()
                opening.push_async_callback(self.hub.close)
            if self.http is not None:
                await self.http.start()
                opening.push_async_callback(self.http.stop)
            self._resources = opening.pop_all()
        self._opened = True

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or a vital task fails); then shut down in order and return.

        An engine shard on a shared journal first waits for the shard's lock (a
        standby waits until the process that holds it is gone).
        """
        await self.open()
        async with self._resources:
            if self.lease is not None:
                self._resources.push_async_callback(self.lease.close)
                if not await self.lease.acquire(stop):
                    log.info("service_stopped", role=self.role, state="standby")
                    return
                self._restore()
            try:
                await run_tasks(tasks(self), shutdown(self), stop, clock=self.clock)
            finally:
                log.info("service_stopped", **self.observer.stats())

    def _restore(self) -> None:
        """Articles first (they make rules), then the rules set through the API, then (an
        engine) its state and the replays' places."""
        for articles in self.article_sources:
            if isinstance(articles, ArticleDirectory):
                articles.load()  # before any tick, so the first alert carries its article
        # The rules set through the API next, so their restored states find them.
        rules, unreadable = rules_of(self.journal.stored_rules())
        for rule_id, why in unreadable:
            log.warning(
                "stored_rule_unreadable", rule=rule_id, error=why, hint="delete or set it again"
            )
        self.processor.set_stored_rules(rules, commit=False)
        if self.role not in ("all", "engine"):
            return  # a gateway or the API: no engine to restore
        cluster = self.config.cluster
        checkpoint = self.journal.load_checkpoint(cluster.label)
        states = {s: state for s, state in checkpoint.symbols.items() if cluster.owns(s)}
        self.processor.restore(states, checkpoint.ticks)
        for source in self.sources:
            position = checkpoint.positions.get(source.name)
            if position is not None and isinstance(source, ReplaySource):
                source.resume(position)

    def readiness(self) -> list[str]:
        return self.observer.readiness()

    def describe(self) -> dict[str, object]:
        """What the service is about to do, for the start-up line."""
        config, articles = self.config, self.config.articles
        return {
            "role": self.role,
            "shard": config.cluster.label or None,
            "rules": len(config.rules),
            "symbols": config.symbols,
            "sources": [f"{source.name}: {source.description}" for source in self.sources],
            "articles_dir": None if articles.dir is None else str(articles.dir),
            "articles_feed": articles.feed_url,
            "auto_levels": articles.auto_levels,
            "journal": self.journal.path,
            "ws_hub": None
            if config.websocket is None
            else f"ws://{config.websocket.host}:{config.websocket.port}",
            "http": None if self.http is None else self.http.url,
            "channels": sorted(self.workers.senders),
            "subscribers": len(self.audience.subscribers),
        }


def tasks(service: Service) -> list[Task]:
    """Every long-running task of the process's role: a source or a channel's link starts
    over; the engine cannot."""
    config = service.config
    if service.role == "delivery":
        return _delivery_tasks(service)
    if service.role in ("gateway", "api"):
        return _follower_tasks(service)
    tasks = [
        Task(
            f"source:{source.name}",
            functools.partial(source.run, service.queue),
            group="sources",
            failed_event="source_failed",
            context={"source": source.name},
        )
        for source in service.sources
    ]
    tasks += [
        Task(f"articles:{source.name}", source.run, group="sources")
        for source in service.article_sources
    ]
    tasks.append(
        Task(
            "engine",
            lambda: run_engine(
                service.queue, service.processor, service.recorder, clock=service.clock
            ),
            group="engine",
            on_failure="stop",
        )
    )
    tasks.append(
        Task(
            "watermark",
            lambda: advance_watermark(service.processor, clock=service.clock),
            group="edges",
        )
    )
    if service.role == "all":
        tasks.append(Task("delivery", service.workers.run, group="delivery"))
    if service.lease is not None:
        # Lost, another process may run the shard now: this one stops (its commits are
        # refused by the journal's fence meanwhile).
        tasks.append(Task("shard_lease", service.lease.hold, group="edges", on_failure="stop"))
    if service.role == "engine":
        tasks.append(Task("rules", functools.partial(_reload_rules, service), group="edges"))
    if service.price_relay is not None:
        tasks.append(Task("price_relay", service.price_relay.run, group="edges"))
    if service.hub is not None:
        tasks.append(Task("ws_hub", service.hub.run, group="edges"))
    if service.role == "all":
        tasks += _channel_links(service)
    if config.engine.stale_seconds > 0:
        tasks.append(
            Task(
                "stale_feed",
                lambda: watch_stale(service.processor, service.stale, clock=service.clock),
                group="edges",
            )
        )
    if service.http is not None and service.role == "all":  # in a cluster, the API's
        tasks.append(Task("signup_expiry", service.http.expire_signups, group="edges"))
    return tasks + _stats_task(service)


def _channel_links(service: Service) -> list[Task]:
    """The connections the channels send through, where the delivery workers run."""
    if service.mqtt_out is None:
        return []
    return [Task("mqtt_out", service.mqtt_out.run, group="edges")]


def _delivery_tasks(service: Service) -> list[Task]:
    """A delivery process: the workers, and the subscribers read again as they change."""
    tasks = [
        Task("delivery", service.workers.run, group="delivery"),
        Task("audience", functools.partial(_reload_audience, service), group="edges"),
    ]
    return tasks + _channel_links(service) + _stats_task(service)


def _follower_tasks(service: Service) -> list[Task]:
    """A gateway (the hub, fed by the journal) or the API: rules and subscribers kept fresh."""
    tasks = [
        Task("audience", functools.partial(_reload_audience, service), group="edges"),
        Task("rules", functools.partial(_reload_rules, service), group="edges"),
    ]
    if service.hub is not None:
        tasks.append(Task("ws_hub", service.hub.run, group="edges"))
    if service.feed is not None:
        tasks.append(Task("alert_feed", service.feed.run, group="edges"))
    if service.price_feed is not None:
        tasks.append(Task("price_feed", service.price_feed.run, group="edges"))
    if service.http is not None and service.role == "api":
        tasks.append(Task("signup_expiry", service.http.expire_signups, group="edges"))
    return tasks + _stats_task(service)


def _stats_task(service: Service) -> list[Task]:
    every_s = service.config.service.stats_seconds
    if every_s <= 0:
        return []
    return [Task("stats", lambda: _log_stats(service, every_s), group="stats")]


async def _reload_audience(service: Service) -> None:
    while True:
        await service.clock.sleep(AUDIENCE_RELOAD_S)
        service.audience.reload()


async def _reload_rules(service: Service) -> None:
    """The rules set through the API (by the API process) to this one's engine or read model."""
    while True:
        await service.clock.sleep(RULES_RELOAD_S)
        try:
            rules, _unreadable = rules_of(service.journal.stored_rules())
        except JournalError as error:
            log.warning("rules_reload_failed", error=str(error), hint="tried again shortly")
            continue
        service.processor.set_stored_rules(rules, commit=service.role == "engine")


def shutdown(service: Service) -> list[Step]:
    """The order of stopping: sources, the queue's last ticks, the engine, deliveries, edges."""

    async def drain() -> None:
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await service.queue.join()
        except TimeoutError:
            log.warning("ticks_abandoned", count=service.queue.qsize())

    async def stop_delivery() -> None:
        service.workers.stop()  # sends in hand are finished; the rest wait in the journal

    async def stop_http() -> None:
        if service.http is not None:
            await service.http.stop()

    async def close_intake() -> None:
        service.queue.close()

    return [
        # The sources stay connected until the engine's last commit is acknowledged to them.
        Step("intake", first=close_intake),
        Step("drain", first=drain),
        Step("engine", group="engine"),
        Step("sources", group="sources", grace_s=SOURCE_CLOSE_GRACE_S),
        Step(
            "delivery", group="delivery", grace_s=DELIVERY_GRACE_S, first=stop_delivery, wait=True
        ),
        Step("edges", group="edges", grace_s=EDGE_CLOSE_GRACE_S),
        Step("http", first=stop_http),
        Step("stats", group="stats"),
    ]


async def _log_stats(service: Service, every_s: float) -> None:
    while True:
        await service.clock.sleep(every_s)
        log.info("pipeline_stats", **service.observer.stats())
