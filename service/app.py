"""The composition root: every part of the service, built from the config and wired.

:func:`build` only wires: it makes each part from its settings and hands it
the roles it uses; it opens no file and no socket. The walk of a batch after
the engine is the one list :func:`_stages` makes. Running the parts is
:mod:`service.running`'s job, observing them :mod:`service.health`'s.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from service.api.context import ApiContext
from service.api.server import HttpServer
from service.articles.sources import (
    ArticleIntake,
    article_sources_of,
)
from service.articles.tracker import ArticleTracker
from service.clock import SYSTEM_CLOCK, Clock
from service.config import Config
from service.delivery.audience import Audience
from service.delivery.channels import senders_of
from service.delivery.decide import backoff_of
from service.delivery.destinations import Resolve, system_resolve
from service.delivery.email import EmailSender
from service.delivery.links import Links
from service.delivery.managers import ManageTokens
from service.delivery.mqtt_out import MqttOutSender
from service.delivery.price_relay import PriceRelay
from service.delivery.recorder import AlertRecorder, CommitPolicy
from service.delivery.workers import DeliveryWorkers
from service.errors import ConfigError
from service.health import Observer, RoleSnapshot
from service.hub.server import WebsocketHub
from service.journal.alert_feed import AlertFeed
from service.journal.choose import journal_for
from service.journal.postgres import PostgresJournal
from service.journal.shard_lease import ShardLease
from service.markets import market_of
from service.metrics import ServiceMetrics
from service.models import AlertEvent
from service.processing.batch import Stages
from service.processing.checkpoint import EngineCheckpoint
from service.processing.engine_task import TickProcessor
from service.processing.history import ChartHistory
from service.processing.live_view import LiveView
from service.processing.stages import (
    AlertCounts,
    attach_articles,
    each_alert,
    log_alert,
    observe_latency,
    watch_arrivals,
)
from service.roles import Role, role_problem
from service.rules.settings import engine_of, unused_settings
from service.rules.stale import StaleFeedWatch
from service.running import Service
from service.streams.mqtt import MqttSource
from service.streams.price_feed import PriceFeed, Segment
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from service.streams.replay import ReplaySource
from service.streams.settings import MqttSourceConfig
from service.streams.source import Source
from service.streams.sources import SAMPLE_SPEED, for_shard, source_of, sources_of
from service.timestamps import NS_PER_SECOND

log = structlog.get_logger("service.app")

AlertSink = Callable[[AlertEvent], None]
# A delivery process looks at the shared outbox at least this often.
DELIVERY_POLL_S = 0.25


def build(
    config: Config,
    *,
    sinks: Sequence[AlertSink] = (log_alert,),
    resolve_host: Resolve = system_resolve,
    clock: Clock = SYSTEM_CLOCK,
    role: Role = "all",
) -> Service:
    """Every part of the service, wired; nothing is opened, read or started.

    ``role`` says which parts the process runs (:data:`service.roles.Role`).
    """
    rejections = Rejections()
    journal = journal_for(config.service.journal)
    links = Links(config.service.public_url, journal)
    cluster = config.cluster
    runs_engine = role in ("all", "engine")
    # An engine shard watches its symbols only; every other role sees them all.
    symbols = cluster.owned(config.symbols)
    owns = cluster.owns if cluster.sharded else None
    view = LiveView(symbols)
    tracker = ArticleTracker.for_settings(config.rules, config.articles)
    # Always kept: the age of each symbol's last tick is a metric; it alerts when set.
    markets = market_of(config.markets)
    stale_session = config.markets.stale_session
    stale = StaleFeedWatch(
        config.engine.stale_seconds if runs_engine else 0,
        symbols=symbols if runs_engine else (),
        now_ns=clock.now_ns(),
        hours_of=lambda symbol: markets(symbol).hours(stale_session),
    )
    counts = AlertCounts()
    mqtt_out = None if config.mqtt_out is None else MqttOutSender(config.mqtt_out)
    email = None
    if config.email is not None:
        email = EmailSender(config.email, unsubscribe=links.unsubscribe)
    senders = senders_of(
        config.delivery, config.push, config.webhook, email=email, mqtt_out=mqtt_out
    )
    audience = Audience(
        journal,
        static=config.subscribers,
        channels=[sender.name for sender in senders],
        mqtt_topic=None if config.mqtt_out is None else config.mqtt_out.topic,
    )
    # The engine and its checkpoint first: the journal stage commits its state.
    engine = engine_of(config.engine, [r for r in config.rules if cluster.owns(r.symbol)], markets)
    checkpoint = EngineCheckpoint(engine, stale, clock=clock)
    sources: list[Source] = []
    if runs_engine:
        if cluster.sharded:
            sources = [
                source_of(s, rejections) for s in for_shard(config.sources, cluster, symbols)
            ]
        else:
            sources = sources_of(config.sources, rejections)
    recorder = AlertRecorder(
        journal,
        audience.plan,
        state=checkpoint.take,
        positions={s.name: s.position_of for s in sources if isinstance(s, ReplaySource)},
        settle=_settler(sources),
        policy=CommitPolicy(
            every_ticks=config.engine.commit_every_ticks,
            within_s=config.engine.commit_within_ms / 1000,
        ),
        clock=clock,
        scope=cluster.label,
    )
    workers = DeliveryWorkers(
        journal,
        senders,
        audience,
        max_attempts=config.delivery.max_attempts,
        backoff=backoff_of(config.delivery),
        clock=clock,
        lease_s=config.delivery.lease_seconds,
        # A file (or memory) is this process's alone: claims left by a crash end at start.
        release_on_start=not isinstance(config.service.journal, str),
        poll_s=None if role == "all" else DELIVERY_POLL_S,
    )
    hub = None
    if config.websocket is not None and role in ("all", "gateway"):
        hub = WebsocketHub(
            config.websocket,
            history=journal,
            view=view,
            clock=clock,
            manager=ManageTokens(links, audience).owner,
        )
    metrics = ServiceMetrics(monotonic=clock.monotonic)
    history = ChartHistory(config.history)
    # In a cluster the engines' prices reach the gateways' dashboards through the broker
    # of the first MQTT source (none: dashboards there get alerts and levels only).
    broker = next((s.broker for s in config.sources if isinstance(s, MqttSourceConfig)), None)
    prices = config.cluster.prices_topic if broker is not None else ""
    relay = None
    if role == "engine" and prices:
        assert broker is not None
        # Segments never span two bars of the shortest chart interval, so the API's are exact.
        bucket_ns = min((ns for ns, _ in history.intervals.values()), default=NS_PER_SECOND)
        relay = PriceRelay(
            broker, prices, hz=cluster.prices_hz, shard=cluster.label, bucket_ns=bucket_ns
        )
    # A follower (gateway, api) keeps the rules and articles for its read model, and
    # evaluates no tick: it has no stage, so it never writes the engines' checkpoints.
    stages = Stages()
    if runs_engine:
        stages = _stages(
            stale=stale,
            view=view,
            # The chart's bars are served by the one process's API; an engine of a
            # cluster has no API to serve them.
            history=history if role == "all" else None,
            tracker=tracker,
            counts=counts,
            sinks=sinks,
            recorder=recorder,
            hub=hub,
            workers=workers,
            observe=metrics.observe_alerts,
            clock=clock,
            relay=relay,
        )
    processor = TickProcessor(
        engine,
        rejections,
        stages=stages,
        tracker=tracker,
        view=view,
        checkpoint=checkpoint if runs_engine else None,
        monotonic=clock.monotonic,
        owns=owns,
    )
    lease = None
    feed = None
    if isinstance(journal, PostgresJournal):
        if role == "engine":
            lease = ShardLease(journal.url, cluster, on_active=journal.fence)
        if role == "gateway" and hub is not None:
            feed = AlertFeed(journal.url, journal, hub.publish_recorded)
    price_feed = None
    if role in ("gateway", "api") and prices:
        assert broker is not None
        charts = history if role == "api" else None
        price_feed = PriceFeed(broker, prices, _follow_prices(hub, charts), rejections)

    def role_state() -> RoleSnapshot:
        return RoleSnapshot(
            role=role,
            shard=cluster.label,
            state="running" if lease is None else lease.state,
            following=None if feed is None else feed.listening,
            alerts_followed=0 if feed is None else feed.published,
            foreign_ticks=processor.foreign_ticks,
        )

    queue = TickQueue(config.engine.queue_size, clock=clock)
    intake = ArticleIntake(processor, clock=clock.now_ns)
    observer = Observer(
        sources=sources,
        processor=processor,
        counts=counts,
        rejections=rejections,
        queue=queue,
        stale=stale,
        intake=intake,
        outbox=journal,
        probe=journal,
        audience=audience,
        recorder=recorder,
        workers=workers,
        hub=hub,
        clock=clock,
        role=role_state,
    )
    metrics.watch(observer.metrics_state)
    http = None
    if config.http is not None:
        http = HttpServer(
            ApiContext(
                http=config.http,
                push=config.push,
                alerts=journal,
                subscribers=journal,
                audience=audience,
                links=links,
                view=view,
                metrics=metrics.render,
                readiness=observer.readiness,
                hub_port=lambda: _hub_port(hub, config),
                confirmations=email,
                clock_ns=clock.now_ns,
                resolve_host=resolve_host,
                # An engine elsewhere cannot be reached to pause a rule of alerts.toml.
                pause_rule=(lambda rule, paused: processor.pause(rule, paused=paused))
                if role == "all"
                else None,
                rules=journal,
                apply_rules=processor.set_stored_rules
                if role == "all"
                else functools.partial(processor.set_stored_rules, commit=False),
                history=history if role in ("all", "api") else None,
            ),
            ops_only=role not in ("all", "api"),
        )
    return Service(
        config=config,
        clock=clock,
        journal=journal,
        rejections=rejections,
        queue=queue,
        sources=sources,
        view=view,
        tracker=tracker,
        processor=processor,
        stale=stale,
        counts=counts,
        intake=intake,
        article_sources=article_sources_of(config.articles, config.aliases, intake, clock),
        audience=audience,
        links=links,
        recorder=recorder,
        workers=workers,
        email=email,
        mqtt_out=mqtt_out,
        hub=hub,
        metrics=metrics,
        observer=observer,
        http=http,
        role=role,
        lease=lease,
        feed=feed,
        price_relay=relay,
        price_feed=price_feed,
    )


def _stages(
    *,
    stale: StaleFeedWatch,
    view: LiveView,
    history: ChartHistory | None,
    tracker: ArticleTracker,
    counts: AlertCounts,
    sinks: Sequence[AlertSink],
    recorder: AlertRecorder,
    hub: WebsocketHub | None,
    workers: DeliveryWorkers,
    observe: Callable[[Sequence[AlertEvent], float], None],
    clock: Clock,
    relay: PriceRelay | None = None,
) -> Stages:
    """The walk of every batch after the engine, in order (see service.processing.batch)."""
    return Stages(
        [
            ("arrivals", watch_arrivals(stale, view, clock.now_ns)),
            *([] if history is None else [("history", history)]),
            *([] if relay is None else [("prices", relay)]),
            ("attach_articles", attach_articles(tracker)),
            ("count", counts),
            *((f"sink:{index}", each_alert(sink)) for index, sink in enumerate(sinks)),
            ("journal", recorder),
            *([] if hub is None else [("hub", hub.publish)]),
            ("wake_channels", workers.wake),
            ("latency", observe_latency(observe)),
        ]
    )


def _follow_prices(
    hub: WebsocketHub | None, history: ChartHistory | None
) -> Callable[[Sequence[Segment]], None]:
    """Where a cluster's follower puts the engines' segments: prices to its hub (a
    gateway's dashboards), bars to its chart history (the API's)."""

    def follow(segments: Sequence[Segment]) -> None:
        if hub is not None:
            hub.observe_ticks([segment.last() for segment in segments])
        if history is not None:
            history.observe([tick for segment in segments for tick in segment.ticks()])

    return follow


def _hub_port(hub: WebsocketHub | None, config: Config) -> int | None:
    """Where dashboards reach a hub: this process's, or (the API role) the gateways' port."""
    if hub is not None:
        return hub.port
    return None if config.websocket is None else config.websocket.port


def _settler(sources: Sequence[Source]) -> Callable[[str, Sequence[int]], None]:
    """Who acknowledges what a commit covers: the MQTT sources, by name."""
    mqtt = {source.name: source for source in sources if isinstance(source, MqttSource)}

    def settle(name: str, receipts: Sequence[int]) -> None:
        source = mqtt.get(name)
        if source is not None:
            source.settle(receipts)

    return settle


def _log_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors asyncio catches in callbacks (a library's, usually): one structured line each."""
    error = context.get("exception")
    log.error(
        "event_loop_error",
        message=context.get("message"),
        error=None if error is None else f"{type(error).__name__}: {error}",
    )


async def serve(config: Config, role: Role = "all") -> None:
    """Run the service (the parts of ``role``) until SIGINT or SIGTERM (``strykr-alerts run``)."""
    problem = role_problem(role, config.service.journal, sharded=config.cluster.sharded)
    if problem is not None:
        raise ConfigError(str(config.path or "alerts.toml"), [problem])
    service = build(config, role=role)
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
    await service.open()
    if service.http is not None:
        # The first thing a person running the service needs: where to look.
        face = "health and metrics" if service.http.ops_only else "dashboard"
        print(f"strykr-alerts: {face} at {service.http.url}  (Ctrl-C stops)", flush=True)  # noqa: T201
    details = service.describe()
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
    for warning in unused_settings(config.engine):
        log.warning("setting_unused", hint=warning)
    if not config.rules and not config.articles.auto_levels:
        log.warning(
            "no_rules",
            hint="add [[rules]] to the config file, or [articles] with auto_levels = true; "
            "nothing will alert",
        )
    await service.run(stop)
