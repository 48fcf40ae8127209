"""The command line: ``strykr-alerts run | replay | article | check``.

A mistake of the user's (a bad config, a missing file) ends with one clear
message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.articles.instruments import Instruments
from service.articles.sources import ArticleIntake, article_files, read_article_file
from service.articles.tracker import ArticleTracker
from service.clock import SYSTEM_CLOCK
from service.cluster import ClusterConfig, parse_shard
from service.config import Config, load_config
from service.errors import ConfigError, JournalError, SourceError, StrykrError
from service.journal.choose import describe_journal, journal_for
from service.log import configure_logging
from service.markets import market_of
from service.models import AlertEvent, Article, Rule, Tick
from service.processing.batch import Stages
from service.processing.checkpoint import EngineCheckpoint
from service.processing.engine_task import TickProcessor
from service.processing.stages import AlertCounts, attach_articles, each_alert
from service.roles import ROLES
from service.rules.settings import describe_rule, engine_of, unused_settings
from service.streams.rejections import Rejections
from service.streams.replay import TickFile, read_tick_file, sample_day_path
from service.timestamps import format_timestamp

EXIT_USAGE = 2
DEFAULT_CONFIG = "alerts.toml"
MAX_PORT = 65_535
# Files with fewer rows replay too fast for a progress bar to help.
PROGRESS_MIN_ROWS = 100_000
# Ticks handed to the engine per call during a replay.
REPLAY_BATCH = 4_096


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except StrykrError as error:
        print(f"strykr-alerts: {error}", file=sys.stderr)
        if isinstance(error, ConfigError | SourceError):
            return EXIT_USAGE
        return 1
    except KeyboardInterrupt:
        return 130
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strykr-alerts",
        description="Real-time price-level alerts: ticks in, level breaks out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the service until SIGINT or SIGTERM")
    _config_option(run)
    run.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="the parts this process runs: all (one process), or one part of a cluster "
        "on a PostgreSQL journal: engine (sources, rules, journal: one shard), delivery "
        "(the channels' workers), gateway (the websocket hub) or api (HTTP and the dashboard)",
    )
    run.add_argument(
        "--shard",
        type=_shard_argument,
        metavar="i/N",
        help="with --role engine: run shard i of N (overrides [cluster]); a second process "
        "of the same shard waits as its standby",
    )
    run.add_argument(
        "--http-port",
        type=_port_argument,
        metavar="PORT",
        help="listen for HTTP on this port (overrides [http] port; 0: a free one)",
    )
    run.add_argument(
        "--ws-port",
        type=_port_argument,
        metavar="PORT",
        help="listen for dashboards' websockets on this port (overrides [websocket] port)",
    )
    run.set_defaults(handler=_run)

    replay = commands.add_parser(
        "replay", help="run a tick file through the rules and print the alerts as JSON lines"
    )
    _config_option(replay)
    replay.add_argument(
        "--ticks", required=True, type=Path, metavar="FILE", help="CSV or Parquet tick file"
    )
    replay.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: on a terminal, for large files)",
    )
    replay.add_argument(
        "--articles",
        type=Path,
        metavar="DIR",
        help="attach the articles of DIR to the alerts, each from its datePublished on "
        "(default: [articles] dir of the config)",
    )
    replay.set_defaults(handler=_replay)

    article = commands.add_parser(
        "article",
        help="parse articles and print one JSON object each: what the service will watch",
    )
    article.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="article files, or directories of them"
    )
    article.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"read [aliases] and [articles] max_bytes from this file "
        f"(default: {DEFAULT_CONFIG} if there is one)",
    )
    article.set_defaults(handler=_article)

    feed = commands.add_parser(
        "feed",
        help="publish a tick file to an MQTT broker as a market data feed would "
        "(ticks/<SYMBOL>, QoS 1): for drills and the local cluster",
    )
    feed.add_argument(
        "--to", required=True, metavar="URL", help="the broker, mqtt://host:1883 or mqtts://…"
    )
    feed.add_argument(
        "--ticks",
        type=Path,
        metavar="FILE",
        help="CSV or Parquet tick file (default: the bundled sample day)",
    )
    feed.add_argument(
        "--speed",
        type=float,
        default=60.0,
        metavar="X",
        help="X times real time, by the ticks' own times (0: as fast as possible; default 60)",
    )
    feed.add_argument("--prefix", default="ticks", help="topic prefix (default: ticks)")
    feed.set_defaults(handler=_feed)

    check = commands.add_parser("check", help="validate the config file and summarise it")
    _config_option(check)
    check.set_defaults(handler=_check)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(DEFAULT_CONFIG),
        metavar="PATH",
        help=f"the TOML config file (default: {DEFAULT_CONFIG})",
    )


def _load(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    configure_logging(level=config.service.log_level, fmt=config.service.log_format)
    return config


def _shard_argument(text: str) -> ClusterConfig:
    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _port_argument(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port, 0 to {MAX_PORT}, got {text!r}")
    return int(text)


def _for_this_process(config: Config, args: argparse.Namespace) -> Config:
    """The config with what the command line overrides: the shard, the ports."""
    if args.shard is not None:
        shard = dataclasses.replace(
            config.cluster, shards=args.shard.shards, shard=args.shard.shard
        )
        config = dataclasses.replace(config, cluster=shard)
    if args.http_port is not None and config.http is not None:
        config = dataclasses.replace(
            config, http=dataclasses.replace(config.http, port=args.http_port)
        )
    if args.ws_port is not None and config.websocket is not None:
        config = dataclasses.replace(
            config, websocket=dataclasses.replace(config.websocket, port=args.ws_port)
        )
    return config


def _run(args: argparse.Namespace) -> int:
    config = _for_this_process(_load(args), args)
    # Only `run` needs the service's channels and servers (apprise, pywebpush, …):
    # the other commands start without loading them.
    from service.app import serve

    asyncio.run(serve(config, role=args.role))
    return 0


def _feed(args: argparse.Namespace) -> int:
    from service.streams.publisher import publish_file

    configure_logging(level="info", fmt="auto")
    if args.speed < 0:
        raise ConfigError("--speed", ["expected 0 (as fast as possible) or more"])
    with contextlib.ExitStack() as stack:
        path = args.ticks if args.ticks is not None else stack.enter_context(sample_day_path())
        ticks = read_tick_file(path)
        count = asyncio.run(publish_file(ticks, args.to, speed=args.speed, prefix=args.prefix))
    print(f"strykr-alerts: published {count} ticks to {args.to}", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    config = _load(args)
    tick_file = read_tick_file(args.ticks)
    source = tick_file.path.name
    rejections = Rejections()
    out = sys.stdout

    def print_alert(alert: AlertEvent) -> None:
        out.write(json.dumps(alert.to_dict()) + "\n")

    tracker = _replay_tracker(config, args.articles)
    counts = AlertCounts()
    stages = Stages(
        [
            *([] if tracker is None else [("attach_articles", attach_articles(tracker))]),
            ("count", counts),
            ("print", each_alert(print_alert)),
        ]
    )
    processor = TickProcessor.for_settings(
        config.engine,
        config.rules,
        rejections,
        stages=stages,
        tracker=tracker,
        market_of=market_of(config.markets),
    )
    show = args.progress
    if show is None:
        show = sys.stderr.isatty() and tick_file.rows >= PROGRESS_MIN_ROWS
    with _progress(show, tick_file) as advance:
        batch: list[Tick] = []
        for row, tick in tick_file.accepted_ticks(rejections, source=source):
            batch.append(tick)
            if len(batch) >= REPLAY_BATCH:
                processor.process(batch, source=source)
                batch.clear()
                advance(row)
        processor.process(batch, source=source)
        processor.finish()
        advance(tick_file.rows)
    out.flush()
    _summarise(sys.stderr, tick_file, processor.ticks, counts.total, rejections)
    return 0


@contextmanager
def _progress(show: bool, tick_file: TickFile) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda _row: None
        return
    progress = Progress(
        TextColumn("replaying {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(tick_file.path.name, total=tick_file.rows)
        yield lambda row: progress.update(task, completed=row)


def _summarise(
    err: TextIO, tick_file: TickFile, ticks: int, alerts: int, rejections: Rejections
) -> None:
    print(
        f"replay: {tick_file.rows:,} rows, {ticks:,} ticks evaluated, "
        f"{rejections.total:,} rejected, {alerts:,} alerts",
        file=err,
    )
    if rejections.total:
        print("rejected rows (skipped):", file=err)
        print(rejections.summary(), file=err)


def _replay_tracker(config: Config, directory: Path | None) -> ArticleTracker | None:
    """The articles of a replay: each takes effect at its datePublished."""
    directory = directory or config.articles.dir
    if directory is None:
        return None
    if not directory.is_dir():
        raise SourceError(str(directory), "no such directory (--articles)")
    tracker = ArticleTracker.for_settings(config.rules, config.articles, as_of_tick_time=True)
    intake = ArticleIntake(_ReplayArticles(tracker))
    instruments = Instruments(config.aliases)
    for path in article_files(directory):
        intake.accept(read_article_file(path, instruments, max_bytes=config.articles.max_bytes))
    return tracker


class _ReplayArticles:
    """Articles of a replay: dated ones go into the tracker, undated ones cannot be placed."""

    def __init__(self, tracker: ArticleTracker) -> None:
        self.tracker = tracker

    def add_article(self, article: Article, *, received_ns: int) -> None:
        if article.published_ns is None:
            print(
                f"strykr-alerts: {article.source}: no datePublished, so a replay cannot tell "
                "when it applies; skipped",
                file=sys.stderr,
            )
            return
        self.tracker.store.put(article, received_ns=received_ns)

    def remove_article(self, source: str) -> None:
        self.tracker.store.remove(source)


def _article(args: argparse.Namespace) -> int:
    config_path = args.config
    if config_path is None and Path(DEFAULT_CONFIG).is_file():
        config_path = Path(DEFAULT_CONFIG)
    config = load_config(config_path) if config_path is not None else Config()
    instruments = Instruments(config.aliases)
    status = 0
    for path in args.paths:
        files = article_files(path) if path.is_dir() else [path]
        if path.is_dir() and not files:
            print(f"strykr-alerts: {path}: no article files (*.txt, *.md, *.html)", file=sys.stderr)
            status = 1
        for file in files:
            article = read_article_file(file, instruments, max_bytes=config.articles.max_bytes)
            if article.rejected is not None:
                print(f"strykr-alerts: {file}: {'; '.join(article.warnings)}", file=sys.stderr)
                status = 1
                continue
            print(json.dumps(article.to_dict(), ensure_ascii=False))
            for warning in article.warnings:
                print(f"strykr-alerts: {file}: warning: {warning}", file=sys.stderr)
    return status


def _rule_status(config: Config) -> Callable[[Rule], str]:
    """Each rule's status: from the journal's checkpoint when there is one (done, paused)."""
    engine = engine_of(config.engine, config.rules, market_of(config.markets))
    setting = config.service.journal
    if isinstance(setting, str) or (setting is not None and setting.is_file()):
        journal = journal_for(setting)
        try:
            stored = journal.load_checkpoint()
            EngineCheckpoint(engine).restore(stored.symbols, stored.ticks)
        except JournalError as error:
            print(f"  warning: rule states not read: {error}")
        finally:
            journal.close()
    now_ns = SYSTEM_CLOCK.now_ns()

    def status(rule: Rule) -> str:
        if rule.expires_ns is not None:
            until = format_timestamp(rule.expires_ns)
            if rule.expires_ns <= now_ns:
                return f"expired (at {until})"
            return f"{engine.status(rule)}, until {until}"
        return engine.status(rule)

    return status


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{args.config}: OK")
    print(f"  rules: {len(config.rules)} on {', '.join(config.symbols) or 'no symbols'}")
    status = _rule_status(config)
    for rule in config.rules:
        print(f"    {rule.id}: {describe_rule(rule)}: {status(rule)}")
    if config.sources:
        for source in config.sources:
            print(f"  source {source.name}: {source.describe()}")
    else:
        print("  sources: none configured; `run` replays the bundled sample day")
    articles = config.articles
    if articles.dir is not None:
        count = len(article_files(articles.dir))
        print(f"  articles: {count} in {articles.dir}, read every {articles.dir_poll_seconds:g} s")
    if articles.feed_url is not None:
        print(
            f"  articles: feed {articles.feed_url}, polled every {articles.feed_poll_seconds:g} s"
        )
    if articles.dir is None and articles.feed_url is None:
        print("  articles: none configured; alerts carry no article")
    else:
        auto = "on" if articles.auto_levels else "off"
        print(f"  auto levels: {auto} (article levels become rules)")
    print(f"  journal: {describe_journal(config.service.journal)}")
    hub = config.websocket
    if hub is None:
        print("  websocket hub: off")
    else:
        auth = "token required" if hub.tokens else "no token"
        print(f"  websocket hub: ws://{hub.host}:{hub.port} ({auth})")
    channels = [
        name
        for name, on in (
            ("dashboards", hub is not None),
            ("email", config.email is not None),
            ("push", True),
            ("webpush", config.push.vapid_private_key is not None),
            ("webhook", True),
            ("mqtt", config.mqtt_out is not None),
        )
        if on
    ]
    print(f"  subscribers: {len(config.subscribers)} in the file; channels: {', '.join(channels)}")
    for warning in unused_settings(config.engine):
        print(f"  warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
