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
import hashlib
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

    def iter_ticks(self, *, after: int = 0) -> Iterator[tuple[int, Tick | TickError]]:
        """Yield ``(row, tick)`` or ``(row, error)`` for every data row, rows counted from 1.

        Rows up to ``after`` are skipped.
        """
        row = 0
        frame = self.frame
        if after > 0:
            frame = frame.slice(after)
            row = after
        for chunk in frame.iter_slices(_SLICE_ROWS):
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

    def accepted_ticks(
        self, rejections: Rejections, *, source: str, after: int = 0
    ) -> Iterator[tuple[int, Tick]]:
        """Yield ``(row, tick)`` for the good rows after ``after``; count and log the bad ones."""
        for row, item in self.iter_ticks(after=after):
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
    after: int = 0,
) -> int:
    """Put the file's ticks into ``queue`` in file order; return how many were put.

    ``speed`` 0 goes as fast as the queue takes them; 1 keeps the gaps between
    the ticks' times; N is N times faster. A full queue makes this wait
    (backpressure), it never drops a tick. Each tick goes with its row as its
    receipt; rows up to ``after`` are skipped (a resumed replay).
    """
    loop = asyncio.get_running_loop()
    start_wall = loop.time()
    first_ts_ns: int | None = None
    sent = 0
    for row, tick in tick_file.accepted_ticks(rejections, source=source, after=after):
        if speed > 0:
            if first_ts_ns is None:
                first_ts_ns = tick.ts_ns
            due = start_wall + (tick.ts_ns - first_ts_ns) / NS_PER_SECOND / speed
            delay = due - loop.time()
            if delay >= _MIN_SLEEP_S:
                await asyncio.sleep(delay)
        elif sent % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        await queue.put(tick, source, row)
        sent += 1
    return sent


def file_fingerprint(path: Path) -> str:
    """A short name of a file's bytes: a replay resumes only in the very file it stopped in."""
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, lambda: hashlib.blake2b(digest_size=8))
    return digest.hexdigest()


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
        self._fingerprint = ""  # of the file being replayed (see position_of)
        self._resume_at: str | None = None

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

    def resume(self, position: str) -> None:
        """Continue after ``position`` (of :meth:`position_of`), if it is of the same file."""
        self._resume_at = position

    def position_of(self, row: int) -> str:
        """Where this replay is once ``row`` is evaluated: the file's fingerprint and the row."""
        return f"{self._fingerprint}:{row}"

    async def put(self, tick: Tick, source: str = "", receipt: int | None = None) -> None:
        """Put one tick into the pipeline's queue, counting it."""
        assert self._queue is not None, "put() is called by run()"
        await self._queue.put(tick, source or self.name, receipt)
        self.accepted += 1

    def _resumed_row(self, tick_file: TickFile) -> int:
        """The row a checkpoint of this very file says was evaluated last (0: start over)."""
        if self._resume_at is None:
            return 0
        fingerprint, _, row = self._resume_at.partition(":")
        if fingerprint != self._fingerprint or not row.isdigit():
            log.info(
                "replay_restarted",
                source=self.name,
                reason="the checkpoint is of another file, or of this file before it changed",
            )
            return 0
        after = int(row)
        if after >= tick_file.rows:
            log.info(
                "replay_resumed",
                source=self.name,
                after_row=after,
                rows=tick_file.rows,
                hint="replayed to its end before: nothing is left to replay; to replay it "
                "again, start with another [service] journal",
            )
        else:
            log.info("replay_resumed", source=self.name, after_row=after, rows=tick_file.rows)
        return after

    async def put_receipt(self, source: str, receipt: int) -> None:
        assert self._queue is not None, "put_receipt() is called by run()"
        await self._queue.put_receipt(source, receipt)

    async def run(self, queue: TickSink) -> None:
        with self._locate(self.path) as path:
            tick_file = await asyncio.to_thread(read_tick_file, path)
            self._fingerprint = await asyncio.to_thread(file_fingerprint, path)
        log.info(
            "replay_started",
            source=self.name,
            path=str(tick_file.path),
            rows=tick_file.rows,
            speed=self.speed,
        )
        after = self._resumed_row(tick_file)
        rejected_before = self._rejections.total
        self._queue = queue
        self.state = "replaying"
        sent = await replay_into(
            tick_file,
            self,
            speed=self.speed,
            source=self.name,
            rejections=self._rejections,
            after=after,
        )
        self.state = "finished"
        log.info(
            "replay_finished",
            source=self.name,
            ticks=sent,
            rejected=self._rejections.total - rejected_before,
        )
