"""The command line: ``strykr-alerts run | replay | check``.

A mistake of the user's (a bad config, a missing file) ends with one clear
message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.app import serve
from service.config import Config, load_config
from service.errors import ConfigError, SourceError, StrykrError
from service.log import configure_logging
from service.models import AlertEvent, Tick
from service.pipeline import TickProcessor
from service.streams.rejections import Rejections
from service.streams.replay import TickFile, read_tick_file

EXIT_USAGE = 2
DEFAULT_CONFIG = "alerts.toml"
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
    replay.set_defaults(handler=_replay)

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


def _run(args: argparse.Namespace) -> int:
    config = _load(args)
    asyncio.run(serve(config))
    return 0


def _replay(args: argparse.Namespace) -> int:
    config = _load(args)
    tick_file = read_tick_file(args.ticks)
    source = tick_file.path.name
    rejections = Rejections()
    out = sys.stdout

    def print_alert(alert: AlertEvent) -> None:
        out.write(json.dumps(alert.to_dict()) + "\n")

    processor = TickProcessor.for_config(config, rejections, [print_alert])
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
        advance(tick_file.rows)
    out.flush()
    _summarise(sys.stderr, tick_file, processor, rejections)
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
    err: TextIO, tick_file: TickFile, processor: TickProcessor, rejections: Rejections
) -> None:
    print(
        f"replay: {tick_file.rows:,} rows, {processor.ticks:,} ticks evaluated, "
        f"{rejections.total:,} rejected, {processor.alerts:,} alerts",
        file=err,
    )
    if rejections.total:
        print("rejected rows (skipped):", file=err)
        print(rejections.summary(), file=err)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{args.config}: OK")
    print(f"  rules: {len(config.rules)} on {', '.join(config.symbols) or 'no symbols'}")
    if config.sources:
        for source in config.sources:
            print(f"  source {source.name}: {source.kind} {source.path} at speed {source.speed:g}")
    else:
        print("  sources: none configured; `run` replays the bundled sample day")
    return 0


if __name__ == "__main__":
    sys.exit(main())
