"""The composition root: builds the service from its config and runs it.

Everything long-lived is a named task in one ``asyncio.TaskGroup``: one per
tick source, one per article source, the engine, and the stats logger. Every
tick source puts into the one bounded :class:`TickQueue`, and the engine is
its only consumer. The article directory is read once before any tick is
evaluated, so the first alert already carries its article. Stopping (SIGINT,
SIGTERM, or the ``stop`` event) stops the sources first, lets the engine
finish what they queued, then stops the engine: all of it within
``SOURCE_CLOSE_GRACE_S + DRAIN_TIMEOUT_S``, well inside the 5 s an operator
(or an orchestrator's stop timeout) should have to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

import structlog

from service.api.context import ApiContext
from service.api.server import HttpServer
from service.articles.instruments import Instruments
from service.articles.sources import ArticleDirectory, ArticleFeed, ArticleIntake
from service.articles.tracker import ArticleTracker
from service.config import Config
from service.delivery.destinations import Resolve, system_resolve
from service.delivery.email import EmailSender
from service.delivery.mqtt_out import MqttOutSender
from service.delivery.pipeline import DeliveryPipeline, Sender
from service.delivery.push import AppriseSender, WebPushSender
from service.delivery.tokens import UNSUBSCRIBE, sign_token
from service.delivery.webhook import WebhookSender
from service.errors import JournalError
from service.hub.server import WebsocketHub
from service.journal.sqlite import SqliteJournal
from service.metrics import MetricsState, ServiceMetrics, tick_batch_listener
from service.pipeline import AlertSink, TickProcessor, log_alert, run_engine
from service.rules.stale import StaleFeedWatch
from service.streams.mqtt import MqttSource
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from service.streams.replay import ReplaySource, sample_day_path
from service.streams.settings import (
    MqttSourceConfig,
    SimulatorSourceConfig,
    SourceConfig,
    WebsocketSourceConfig,
)
from service.streams.simulator import SimulatorSource
from service.streams.ws_feed import WebsocketFeedSource

# The bundled sample day runs at this multiple of real time: its first level
# break comes about half a minute after start.
SAMPLE_SPEED = 60.0
SAMPLE_SOURCE = "sample"
# Stopping: sources get this long to close their connections politely
# (an MQTT DISCONNECT, a websocket close), then are cancelled again, which
# cuts any wait short; the engine then gets DRAIN_TIMEOUT_S for what is queued.
SOURCE_CLOSE_GRACE_S = 1.5
DRAIN_TIMEOUT_S = 2.0
# Delivery workers finish the sends in hand within this; the hub and MQTT out close within
# EDGE_CLOSE_GRACE_S.
DELIVERY_GRACE_S = 1.0
EDGE_CLOSE_GRACE_S = 1.0
# Source states in which the service is ready (/readyz). A finished replay has
# nothing more to send; that is the end of its job, not a fault.
READY_SOURCE_STATES = frozenset({"connected", "replaying", "finished", "running"})
# The stale-feed rule is checked this often (at most; more often for a short stale_seconds).
STALE_CHECK_S = 1.0

log = structlog.get_logger("service.app")


class Source(Protocol):
    name: str
    description: str
    accepted: int  # ticks put into the queue

    @property
    def state(self) -> str: ...  # connected, disconnected, starting, replaying, finished, running

    def problem(self) -> str | None: ...  # why it is not ready, in words (None: see state)

    async def run(self, queue: TickQueue) -> None: ...


class App:
    """The running service: sources → queue → engine → alert sinks."""

    def __init__(
        self,
        config: Config,
        *,
        sinks: Sequence[AlertSink] = (log_alert,),
        resolve_host: Resolve = system_resolve,
        api_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self._resolve_host = resolve_host
        self._api_clock_ns = api_clock_ns
        self.rejections = Rejections()
        articles = config.articles
        self.tracker = ArticleTracker.for_settings(config.rules, config.articles)
        self.processor = TickProcessor.for_config(
            config, self.rejections, sinks, tracker=self.tracker
        )
        self.intake = ArticleIntake(self.processor)
        instruments = Instruments(config.aliases)
        self.article_sources: list[ArticleDirectory | ArticleFeed] = []
        if articles.dir is not None:
            self.article_sources.append(
                ArticleDirectory(
                    articles.dir,
                    self.intake,
                    instruments,
                    poll_seconds=articles.dir_poll_seconds,
                    max_bytes=articles.max_bytes,
                )
            )
        if articles.feed_url is not None:
            self.article_sources.append(
                ArticleFeed(
                    articles.feed_url,
                    self.intake,
                    instruments,
                    poll_seconds=articles.feed_poll_seconds,
                    max_bytes=articles.max_bytes,
                )
            )
        self.journal = SqliteJournal(config.service.journal or ":memory:")
        self.hub = (
            None
            if config.websocket is None
            else WebsocketHub(config.websocket, history=self.journal, snapshot=self.processor)
        )
        self.mqtt_out = None if config.mqtt_out is None else MqttOutSender(config.mqtt_out)
        self.delivery = DeliveryPipeline(
            self.journal,
            senders=self._senders(),
            subscribers=config.subscribers,
            config=config.delivery,
            hub=self.hub,
            mqtt_topic=None if config.mqtt_out is None else config.mqtt_out.topic,
        )
        self.processor.listeners.append(self.delivery.on_batch)
        self.queue = TickQueue(config.engine.queue_size)
        # Always kept: the age of each symbol's last tick is a metric; it alerts when set.
        self.processor.stale = StaleFeedWatch(
            config.engine.stale_seconds, symbols=config.symbols, now_ns=time.time_ns()
        )
        self.metrics = ServiceMetrics(self.metrics_state)
        self.processor.listeners.append(
            tick_batch_listener(self.metrics, lambda: self.queue.batch_enqueued)
        )
        self.http = None if config.http is None else HttpServer(self._api_context(config))
        self._opened = False
        self._resources = contextlib.ExitStack()
        self.sources: list[Source] = [self._source(spec) for spec in config.sources]
        if not self.sources:
            self.sources.append(
                ReplaySource(
                    SAMPLE_SOURCE,
                    self._resources.enter_context(sample_day_path()),
                    speed=SAMPLE_SPEED,
                    rejections=self.rejections,
                )
            )

    def _senders(self) -> list[Sender]:
        """One sender per configured channel."""
        config = self.config
        concurrency = config.delivery.concurrency
        senders: list[Sender] = [
            AppriseSender(config.push, concurrency=concurrency),
            WebPushSender(config.push, concurrency=concurrency),
            WebhookSender(config.webhook, concurrency=concurrency),
        ]
        self.email: EmailSender | None = None
        if config.email is not None:
            self.email = EmailSender(config.email, unsubscribe=self.unsubscribe_link)
            senders.append(self.email)
        if self.mqtt_out is not None:
            senders.append(self.mqtt_out)
        return senders

    def _api_context(self, config: Config) -> ApiContext:
        assert config.http is not None
        return ApiContext(
            config=config,
            http=config.http,
            journal=self.journal,
            delivery=self.delivery,
            processor=self.processor,
            metrics=self.metrics,
            readiness=self.readiness,
            hub_port=lambda: None if self.hub is None else self.hub.port,
            email=self.email,
            resolve_host=self._resolve_host,
            clock_ns=self._api_clock_ns,
        )

    def unsubscribe_link(self, subscriber_id: str) -> tuple[str, str]:
        """(URL, token) of the one-click unsubscribe link of ``subscriber_id`` (RFC 8058)."""
        token = sign_token(self.journal.secret(), UNSUBSCRIBE, subscriber_id)
        return f"{self.config.service.public_url}/api/v1/unsubscribe?token={token}", token

    def _source(self, spec: SourceConfig) -> Source:
        if isinstance(spec, MqttSourceConfig):
            return MqttSource(spec, self.rejections)
        if isinstance(spec, WebsocketSourceConfig):
            return WebsocketFeedSource(spec, self.rejections)
        if isinstance(spec, SimulatorSourceConfig):
            return SimulatorSource(spec)
        return ReplaySource(spec.name, spec.path, speed=spec.speed, rejections=self.rejections)

    async def open(self) -> None:
        """Start listening (hub, then HTTP): a port already taken stops start-up here."""
        if self._opened:
            return
        if self.hub is not None:
            await self.hub.start()
        if self.http is not None:
            try:
                await self.http.start()
            except BaseException:
                if self.hub is not None:
                    await self.hub.close()
                raise
        self._opened = True

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then shut down in order and return."""
        await self.open()
        for article_source in self.article_sources:
            if isinstance(article_source, ArticleDirectory):
                article_source.load()
        try:
            async with asyncio.TaskGroup() as group:
                source_tasks = [
                    group.create_task(
                        self._supervise(source.name, source.run(self.queue)),
                        name=f"source:{source.name}",
                    )
                    for source in self.sources
                ]
                source_tasks += [
                    group.create_task(
                        self._supervise(source.name, source.run()), name=f"articles:{source.name}"
                    )
                    for source in self.article_sources
                ]
                engine_task = group.create_task(
                    run_engine(self.queue, self.processor), name="engine"
                )
                delivery_task = group.create_task(self.delivery.run(), name="delivery")
                edge_tasks = []
                if self.hub is not None:
                    edge_tasks.append(group.create_task(self.hub.run(), name="ws_hub"))
                if self.mqtt_out is not None:
                    edge_tasks.append(
                        group.create_task(
                            self._supervise("mqtt_out", self.mqtt_out.run()), name="mqtt_out"
                        )
                    )
                if self.config.engine.stale_seconds > 0:
                    edge_tasks.append(group.create_task(self._watch_stale(), name="stale_feed"))
                if self.http is not None:
                    edge_tasks.append(
                        group.create_task(self.http.expire_signups(), name="signup_expiry")
                    )
                stats_task = None
                if self.config.service.stats_seconds > 0:
                    stats_task = group.create_task(
                        self._log_stats(self.config.service.stats_seconds), name="stats"
                    )
                await stop.wait()
                log.info("service_stopping")
                await _cancel(source_tasks, grace=SOURCE_CLOSE_GRACE_S)
                await self._drain()
                engine_task.cancel()
                # Deliveries in hand are finished and recorded; the rest wait in the journal.
                self.delivery.stop()
                _, unfinished = await asyncio.wait([delivery_task], timeout=DELIVERY_GRACE_S)
                await _cancel(list(unfinished), grace=DELIVERY_GRACE_S)
                await _cancel(edge_tasks, grace=EDGE_CLOSE_GRACE_S)
                if self.http is not None:
                    await self.http.stop()
                if stats_task is not None:
                    stats_task.cancel()
        finally:
            self._resources.close()
        try:
            log.info("service_stopped", **self.stats())
        finally:
            self.journal.close()

    async def _supervise(self, name: str, work: Coroutine[object, object, None]) -> None:
        """Run one source; its failure is logged and never stops the others."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("source_failed", source=name, error=str(error), exc_info=True)

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await self.queue.join()
        except TimeoutError:
            log.warning("ticks_abandoned", count=self.queue.qsize())

    async def _watch_stale(self) -> None:
        stale = self.processor.stale
        assert stale is not None
        every_s = min(STALE_CHECK_S, stale.stale_seconds / 4)
        while True:
            await asyncio.sleep(every_s)
            self.processor.check_stale()

    def readiness(self) -> list[str]:
        """Why the service cannot do its job now (``/readyz``); empty when it can."""
        reasons: list[str] = []
        try:
            self.journal.check_writable(now_ns=time.time_ns())
        except JournalError as error:
            reasons.append(f"journal: {error}")
        if self.delivery.holding:
            reasons.append(
                f"journal: {self.delivery.holding} alerts held in memory, not yet written"
            )
        for source in self.sources:
            problem = source.problem()
            if problem is not None:
                reasons.append(f"source {source.name}: {problem}")
            elif source.state not in READY_SOURCE_STATES:
                reasons.append(f"source {source.name}: {source.state}")
        return reasons

    def metrics_state(self) -> MetricsState:
        """The counters ``/metrics`` exports, read at each scrape."""
        stale = self.processor.stale
        return MetricsState(
            ticks_by_source={
                source.name: self.processor.ticks_by_source[source.name] for source in self.sources
            },
            source_up={source.name: source.state in READY_SOURCE_STATES for source in self.sources},
            rejected_by_reason=dict(self.rejections.counts),
            alerts_by=dict(self.processor.alerts_by),
            deliveries_by=dict(self.delivery.outcomes),
            delivery_pending=self.journal.pending_count(),
            last_tick_age_s={} if stale is None else stale.ages(time.time_ns()),
            ws_clients=0 if self.hub is None else self.hub.client_count(),
            queue_depth=self.queue.qsize(),
            articles=self.intake.loaded,
            journal_failures=self.delivery.journal_failures,
        )

    async def _log_stats(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            log.info("pipeline_stats", **self.stats())

    def stats(self) -> dict[str, object]:
        """The service's counters: what the sources brought, what the engine did, the lag.

        ``lag_max_s`` is the longest a tick waited in the queue since the
        previous call; ``queue_full_waits`` counts the times a source found the
        queue full and had to wait (backpressure).
        """
        return {
            "ticks": self.processor.ticks,
            "alerts": self.processor.alerts,
            "rejected": self.rejections.total,
            "rejected_by_reason": dict(self.rejections.counts),
            "queue_depth": self.queue.qsize(),
            "queue_size": self.queue.maxsize,
            "queue_full_waits": self.queue.full_waits,
            "lag_max_s": round(self.queue.take_max_lag(), 6),
            "sources": {
                source.name: _source_stats(source, self.processor.ticks_by_source[source.name])
                for source in self.sources
            },
            "articles": self.intake.loaded,
            "articles_rejected": self.intake.rejected.total(),
            "deliveries": self.delivery.stats(),
            "ws": None if self.hub is None else self.hub.stats(),
        }

    def describe(self) -> dict[str, object]:
        """What the service is about to do, for the start-up line."""
        sources = [f"{source.name}: {source.description}" for source in self.sources]
        articles = self.config.articles
        return {
            "rules": len(self.config.rules),
            "symbols": self.config.symbols,
            "sources": sources,
            "articles_dir": None if articles.dir is None else str(articles.dir),
            "articles_feed": articles.feed_url,
            "auto_levels": articles.auto_levels,
            "journal": self.journal.path,
            "ws_hub": None
            if self.config.websocket is None
            else f"ws://{self.config.websocket.host}:{self.config.websocket.port}",
            "dashboard": None if self.http is None else self.http.url,
            "channels": sorted(self.delivery.senders),
            "subscribers": len(self.delivery.subscribers),
        }


def _source_stats(source: Source, accepted: int) -> dict[str, object]:
    """``ticks``: what the engine accepted of the source's ticks (``received``: messages read)."""
    stats: dict[str, object] = {"ticks": accepted, "state": source.state}
    for name in ("received", "connections", "duplicates", "paused"):
        if hasattr(source, name):
            stats[name] = getattr(source, name)
    return stats


async def _cancel(tasks: Sequence[asyncio.Task[None]], *, grace: float) -> None:
    """Cancel ``tasks``; cancel again those still running after ``grace`` seconds."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        log.warning("task_slow_to_stop", task=task.get_name(), grace_s=grace)
        task.cancel()
    if pending:
        await asyncio.wait(pending)


def _log_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors asyncio catches in callbacks (a library's, usually): one structured line each."""
    error = context.get("exception")
    log.error(
        "event_loop_error",
        message=context.get("message"),
        error=None if error is None else f"{type(error).__name__}: {error}",
    )


async def serve(config: Config) -> None:
    """Run the service until SIGINT or SIGTERM (``strykr-alerts run``)."""
    app = App(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(signame: str) -> None:
        log.info("signal_received", signal=signame)
        stop.set()
        # A second Ctrl-C falls through to the default handler and ends the process.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop, sig.name)
    loop.set_exception_handler(_log_loop_error)
    await app.open()
    if app.http is not None:
        # The first thing a person running the service needs: where to look.
        print(f"strykr-alerts: dashboard at {app.http.url}  (Ctrl-C stops)", flush=True)
    details = app.describe()
    if config.sources:
        log.info("service_started", **details)
    else:
        log.info(
            "service_started",
            **details,
            note=(
                f"no [[sources]] configured: replaying the bundled sample day at {SAMPLE_SPEED:g}x "
                "real time; the first alert comes within a minute. Ctrl-C stops."
            ),
        )
    if not config.rules and not config.articles.auto_levels:
        log.warning(
            "no_rules",
            hint="add [[rules]] to the config file, or [articles] with auto_levels = true; "
            "nothing will alert",
        )
    await app.run(stop)
