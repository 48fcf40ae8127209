from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import polars as pl
import pytest
import structlog

from service.errors import SourceError, TickError
from service.models import Tick
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from service.streams.replay import ReplaySource, read_tick_file, replay_into, sample_day_path
from tests.waiting import eventually


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_tick_file_reports_each_row_with_its_number(tmp_path: Path) -> None:
    ticks = read_tick_file(
        write(
            tmp_path / "t.csv",
            "ts,symbol,price,volume,bid,ask,exchange\n"
            "2026-02-02T14:30:00Z,iwm,259.6,100,259.5,259.7,ARCA\n"
            "2026-02-02T14:30:01Z,IWM,-1,,,,ARCA\n",
        )
    )
    (row1, first), (row2, second) = list(ticks.iter_ticks())
    assert row1 == 1
    assert isinstance(first, Tick)
    assert (first.symbol, first.price, first.volume, first.bid, first.ask) == (
        "IWM",
        259.6,
        100.0,
        259.5,
        259.7,
    )
    assert row2 == 2
    assert isinstance(second, TickError)
    assert second.reason == "price_not_positive"


def test_read_tick_file_with_ragged_rows_keeps_the_good_ones(tmp_path: Path) -> None:
    ticks = read_tick_file(
        write(
            tmp_path / "t.csv",
            "ts,symbol,price\n1770042600,IWM,1,extra\n1770042601,IWM\n1770042602,IWM,3\n",
        )
    )
    kinds = [type(item).__name__ for _, item in ticks.iter_ticks()]
    assert kinds == ["Tick", "TickError", "Tick"]


def test_read_tick_file_reads_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"ts,symbol,price\n1770042600,IWM,259.6\n"))
    assert [t.price for _, t in read_tick_file(path).iter_ticks() if isinstance(t, Tick)] == [259.6]


def test_read_tick_file_converts_a_parquet_datetime_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {"ts": ["2026-02-02T14:30:14.123Z"], "symbol": ["IWM"], "price": [259.6]}
    ).with_columns(pl.col("ts").str.to_datetime(time_zone="UTC")).write_parquet(path)
    ((_, only),) = list(read_tick_file(path).iter_ticks())
    assert isinstance(only, Tick)
    assert only.at == "2026-02-02T14:30:14.123Z"


def test_read_tick_file_when_columns_missing_names_them(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing column\(s\) price; .* found: ts, symbol"):
        read_tick_file(write(tmp_path / "t.csv", "ts,symbol\n1,IWM\n"))


def test_sample_day_is_bundled_with_three_symbols() -> None:
    with sample_day_path() as path:
        ticks = read_tick_file(path)
    assert ticks.rows > 50_000
    assert set(ticks.frame["symbol"].unique()) == {"IWM", "SPX", "RUT"}


async def test_replay_into_at_speed_keeps_the_gaps_between_ticks(tmp_path: Path) -> None:
    # Ticks 0, 1 and 2 seconds apart, replayed 10x faster: 0.2 s in all, not less.
    ticks = read_tick_file(
        write(
            tmp_path / "t.csv",
            "ts,symbol,price\n1770042600,IWM,1\n1770042601,IWM,2\n1770042602,IWM,3\n",
        )
    )
    queue = TickQueue(10)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = await replay_into(ticks, queue, speed=10, source="t", rejections=Rejections())
    assert sent == 3
    assert loop.time() - started >= 0.2 - 0.01  # the event loop's clock granularity
    batch = await queue.get_batch(10)
    assert [t.price for t in batch.ticks] == [1.0, 2.0, 3.0]
    assert list(batch.sources) == ["t", "t", "t"]


async def test_replay_into_when_queue_is_full_waits_instead_of_dropping(tmp_path: Path) -> None:
    rows = "".join(f"{1770042600 + i},IWM,{i + 1}\n" for i in range(50))
    ticks = read_tick_file(write(tmp_path / "t.csv", "ts,symbol,price\n" + rows))
    queue = TickQueue(5)
    replay = asyncio.create_task(
        replay_into(ticks, queue, speed=0, source="t", rejections=Rejections())
    )
    await eventually(lambda: queue.full_waits == 1, what="the replay waiting")
    assert queue.qsize() == 5
    assert not replay.done()
    prices: list[float] = []
    while len(prices) < 50:
        batch = await asyncio.wait_for(queue.get_batch(1), 1)
        prices.append(batch.ticks[0].price)
    assert await replay == 50
    assert prices == [float(i + 1) for i in range(50)]


async def test_replay_into_counts_bad_rows_and_sends_the_good_ones(tmp_path: Path) -> None:
    ticks = read_tick_file(
        write(
            tmp_path / "t.csv",
            "ts,symbol,price\n1770042600,IWM,1\nnope,IWM,2\n1770042602,IWM,NaN\n1770042603,IWM,4\n",
        )
    )
    queue = TickQueue(10)
    rejections = Rejections()
    assert await replay_into(ticks, queue, speed=0, source="t", rejections=rejections) == 2
    assert dict(rejections.counts) == {"bad_ts": 1, "price_not_finite": 1}


def test_rejections_log_the_first_of_each_reason_only() -> None:
    rejections = Rejections()
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            rejections.record(TickError("bad_price", "price must be a number"), source="feed")
        rejections.record(TickError("missing_ts", "no time"), source="feed", where="row 9")
    assert [(e["event"], e["reason"]) for e in logs] == [
        ("tick_rejected", "bad_price"),
        ("tick_rejected", "missing_ts"),
    ]
    assert rejections.total == 4
    assert rejections.summary().splitlines() == [
        "  bad_price: 3 (first: feed: price must be a number)",
        "  missing_ts: 1 (first: feed row 9: no time)",
    ]


CSV_5 = "ts,symbol,price\n" + "".join(f"2026-02-02T14:30:0{i}Z,IWM,{256 - i}\n" for i in range(5))


async def replayed(source: ReplaySource) -> list[tuple[Tick, int | None]]:
    """Run ``source`` to its end; the ticks it put, each with its receipt (its row)."""
    queue = TickQueue(100)
    await source.run(queue)
    batch = await queue.get_batch(100)
    rows = iter(receipt for _, receipt in batch.receipts)
    return [(tick, next(rows)) for tick in batch.ticks]


def replay_of(path: Path) -> ReplaySource:
    return ReplaySource("file", path, speed=0, rejections=Rejections())


async def test_each_tick_goes_with_its_row_and_a_position_names_the_file_and_row(
    tmp_path: Path,
) -> None:
    source = replay_of(write(tmp_path / "t.csv", CSV_5))
    assert [row for _, row in await replayed(source)] == [1, 2, 3, 4, 5]
    fingerprint, _, row = source.position_of(3).partition(":")
    assert (len(fingerprint), row) == (16, "3")


async def test_a_resumed_replay_goes_on_after_the_row_of_its_checkpoint(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", CSV_5)
    first = replay_of(path)
    everything = await replayed(first)
    again = replay_of(path)
    again.resume(first.position_of(3))
    with structlog.testing.capture_logs() as logs:
        assert await replayed(again) == everything[3:]
    [resumed] = [e for e in logs if e["event"] == "replay_resumed"]
    assert (resumed["after_row"], resumed["rows"]) == (3, 5)


@pytest.mark.parametrize("position", ["0123456789abcdef:3", "garbage", "", ":2"])
async def test_a_replay_of_another_file_or_an_unreadable_position_starts_over(
    tmp_path: Path, position: str
) -> None:
    path = write(tmp_path / "t.csv", CSV_5)
    source = replay_of(path)
    source.resume(position)
    with structlog.testing.capture_logs() as logs:
        assert [row for _, row in await replayed(source)] == [1, 2, 3, 4, 5]
    assert [e["event"] for e in logs if e["event"].startswith("replay_re")] == ["replay_restarted"]


async def test_a_file_changed_since_the_checkpoint_is_replayed_from_its_start(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "t.csv", CSV_5)
    first = replay_of(path)
    await replayed(first)
    position = first.position_of(3)
    write(path, CSV_5.replace("IWM,254", "IWM,254.5"))  # same rows, same times, one price
    again = replay_of(path)
    again.resume(position)
    assert [row for _, row in await replayed(again)] == [1, 2, 3, 4, 5]


async def test_a_replay_resumed_at_its_end_puts_nothing_and_says_how_to_replay_again(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "t.csv", CSV_5)
    first = replay_of(path)
    await replayed(first)
    again = replay_of(path)
    again.resume(first.position_of(5))
    queue = TickQueue(10)
    with structlog.testing.capture_logs() as logs:
        await again.run(queue)
    assert (queue.qsize(), again.state) == (0, "finished")
    [resumed] = [e for e in logs if e["event"] == "replay_resumed"]
    assert "another [service] journal" in resumed["hint"]
