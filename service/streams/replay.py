"""Replay of tick files (CSV or Parquet) read with polars.

A tick file has the columns ``ts``, ``symbol`` and ``price``, and optionally
``volume``, ``bid`` and ``ask``; other columns are ignored. ``ts`` is ISO 8601
or an epoch number (seconds, milliseconds…), or a Parquet datetime. Each row
goes through the same :func:`~service.streams.decode.make_tick` as a live
message, so a file replays exactly as the feed that recorded it would stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import structlog

from service.errors import SourceError, TickError
from service.models import Tick
from service.streams.decode import make_tick
from service.streams.queue import TickSink
from service.streams.rejections import Rejections
from service.streams.settings import describe_speed
from service.streams.source import SourceSnapshot, SourceState
from service.text import first_line
from service.timestamps import NS_PER_SECOND

SAMPLE_DAY = "sample_day.parquet"
REQUIRED_COLUMNS = ("ts", "symbol", "price")
OPTIONAL_COLUMNS = ("volume", "bid", "ask")
_SLICE_ROWS = 20_000
# With speed 0 a replay yields to the event loop every this many ticks, so
# that the engine and everything else keep running while it reads.
_YIELD_EVERY = 1_000
# Shorter waits than this are folded into the next one: one timer per tick
# would cost more than the ticks.
_MIN_SLEEP_S = 0.002

log = structlog.get_logger("service.streams.replay")


@contextlib.contextmanager
def sample_day_path() -> Iterator[Path]:
    """The bundled sample day: IWM, SPX and RUT on 2026-02-02, breaking the seed's levels."""
    resource = importlib.resources.files("service") / "data" / SAMPLE_DAY
    with importlib.resources.as_file(resource) as path:
        yield path


@dataclass(frozen=True, slots=True)
class TickFile:
    """A tick file read into memory, ready to iterate row by row."""

    path: Path
    frame: pl.DataFrame

    @property
    def rows(self) -> int:
        return self.frame.height

    def iter_ticks(self) -> Iterator[tuple[int, Tick | TickError]]:
        """Yield ``(row, tick)`` or ``(row, error)`` for every data row, rows counted from 1."""
        row = 0
        for chunk in self.frame.iter_slices(_SLICE_ROWS):
            for ts, symbol, price, volume, bid, ask in chunk.iter_rows():
                row += 1
                try:
                    yield (
                        row,
                        make_tick(
                            symbol=symbol, price=price, ts=ts, volume=volume, bid=bid, ask=ask
                        ),
                    )
                except TickError as error:
                    yield row, error

    def accepted_ticks(self, rejections: Rejections, *, source: str) -> Iterator[tuple[int, Tick]]:
        """Yield ``(row, tick)`` for the good rows; count and log the bad ones by row."""
        for row, item in self.iter_ticks():
            if isinstance(item, TickError):
                rejections.record(item, source=source, where=f"row {row}")
            else:
                yield row, item


def read_tick_file(path: str | Path) -> TickFile:
    """Read a CSV (optionally gzipped) or Parquet tick file; raise ``SourceError`` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(str(path), "no such file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic == b"PAR1":
            frame = pl.read_parquet(path)
        else:
            # Everything as text: each row is validated by make_tick, so one bad
            # value rejects one row instead of failing the whole file.
            frame = pl.read_csv(
                path,
                infer_schema_length=0,
                encoding="utf8-lossy",
                truncate_ragged_lines=True,
            )
    except pl.exceptions.NoDataError:
        raise SourceError(
            str(path), "the file is empty; expected a header ts,symbol,price"
        ) from None
    except (pl.exceptions.PolarsError, OSError) as error:
        raise SourceError(
            str(path), f"not a readable CSV or Parquet tick file ({first_line(error)})"
        ) from None
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        found = ", ".join(frame.columns[:10]) or "none"
        raise SourceError(
            str(path),
            f"missing column(s) {', '.join(missing)}; a tick file needs ts, symbol, price "
            f"(and may have volume, bid, ask); found: {found}",
        )
    columns: list[pl.Expr] = []
    for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        if name not in frame.columns:
            columns.append(pl.lit(None).alias(name))
        elif name == "ts" and isinstance(frame.schema["ts"], pl.Datetime):
            # A typed time column converts to epoch nanoseconds in one vectorised step.
            columns.append(pl.col("ts").dt.epoch("ns"))
        else:
            columns.append(pl.col(name))
    return TickFile(path=path, frame=frame.select(columns))


async def replay_into(
    tick_file: TickFile,
    queue: TickSink,
    *,
    speed: float,
    source: str,
    rejections: Rejections,
) -> int:
    """Put the file's ticks into ``queue`` in file order; return how many were put.

    ``speed`` 0 goes as fast as the queue takes them; 1 keeps the gaps between
    the ticks' times; N is N times faster. A full queue makes this wait
    (backpressure), it never drops a tick.
    """
    loop = asyncio.get_running_loop()
    start_wall = loop.time()
    first_ts_ns: int | None = None
    sent = 0
    for _row, tick in tick_file.accepted_ticks(rejections, source=source):
        if speed > 0:
            if first_ts_ns is None:
                first_ts_ns = tick.ts_ns
            due = start_wall + (tick.ts_ns - first_ts_ns) / NS_PER_SECOND / speed
            delay = due - loop.time()
            if delay >= _MIN_SLEEP_S:
                await asyncio.sleep(delay)
        elif sent % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        await queue.put(tick, source)
        sent += 1
    return sent


class ReplaySource:
    """A ``[[sources]] kind = "replay"``: streams a tick file into the pipeline once.

    The file is read when the source runs, never when it is made; ``locate``
    turns ``path`` into the file to read (the bundled sample day is a package
    resource, extracted for as long as it is read).
    """

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        speed: float,
        rejections: Rejections,
        locate: Callable[[Path], AbstractContextManager[Path]] = contextlib.nullcontext,
    ) -> None:
        self.name = name
        self.path = path
        self.speed = speed
        self._rejections = rejections
        self._locate = locate
        self.description = f"replay of {path.name} {describe_speed(speed)}"
        self.accepted = 0
        self.state: SourceState = "starting"  # then "replaying", then "finished"
        self._queue: TickSink | None = None

    @classmethod
    def sample_day(cls, name: str, *, speed: float, rejections: Rejections) -> ReplaySource:
        """The bundled sample day (what ``run`` replays when no source is configured)."""
        return cls(
            name,
            Path(SAMPLE_DAY),
            speed=speed,
            rejections=rejections,
            locate=lambda _path: sample_day_path(),
        )

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(name=self.name, state=self.state, accepted=self.accepted)

    async def put(self, tick: Tick, source: str = "") -> None:
        """Put one tick into the pipeline's queue, counting it."""
        assert self._queue is not None, "put() is called by run()"
        await self._queue.put(tick, source or self.name)
        self.accepted += 1

    async def run(self, queue: TickSink) -> None:
        with self._locate(self.path) as path:
            tick_file = await asyncio.to_thread(read_tick_file, path)
        log.info(
            "replay_started",
            source=self.name,
            path=str(tick_file.path),
            rows=tick_file.rows,
            speed=self.speed,
        )
        rejected_before = self._rejections.total
        self._queue = queue
        self.state = "replaying"
        sent = await replay_into(
            tick_file, self, speed=self.speed, source=self.name, rejections=self._rejections
        )
        self.state = "finished"
        log.info(
            "replay_finished",
            source=self.name,
            ticks=sent,
            rejected=self._rejections.total - rejected_before,
        )
