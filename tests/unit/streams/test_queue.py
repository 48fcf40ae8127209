"""The tick queue: bounded, in order, and measuring waits and lag."""

from __future__ import annotations

import asyncio

import pytest

from service.streams.queue import TickQueue
from tests.builders import tick
from tests.clock import FakeClock
from tests.waiting import eventually


async def test_batches_come_in_put_order_up_to_the_limit() -> None:
    queue = TickQueue(10)
    for i in range(5):
        await queue.put(tick(250 + i, i))
    assert [t.price for t in (await queue.get_batch(3)).ticks] == [250, 251, 252]
    assert [t.price for t in (await queue.get_batch(3)).ticks] == [253, 254]
    assert queue.put_count == 5


async def test_a_batch_names_the_source_of_each_tick() -> None:
    queue = TickQueue(10)
    await queue.put(tick(250, 0), "broker")
    await queue.put(tick(251, 1), "feed")
    await queue.put(tick(252, 2), "broker")
    batch = await queue.get_batch(10)
    assert list(batch.sources) == ["broker", "feed", "broker"]
    assert batch.enqueued == queue.batch_enqueued


async def test_a_put_into_a_full_queue_waits_and_is_counted() -> None:
    queue = TickQueue(2)
    await queue.put(tick(1, 0))
    await queue.put(tick(2, 1))
    blocked = asyncio.create_task(queue.put(tick(3, 2)))
    await eventually(lambda: queue.full_waits == 1, what="the put waiting")
    assert not blocked.done()
    await queue.get_batch(1)
    await asyncio.wait_for(blocked, 1)
    assert queue.qsize() == 2


async def test_lag_is_how_long_the_oldest_tick_of_a_batch_waited() -> None:
    clock = FakeClock()
    queue = TickQueue(10, clock=clock)
    await queue.put(tick(1, 0))
    clock.advance(0.05)
    await queue.put(tick(2, 1))
    clock.advance(0.02)
    await queue.get_batch(10)
    assert queue.lag_s == pytest.approx(0.07)
    assert queue.take_max_lag() == pytest.approx(0.07)
    assert queue.take_max_lag() == 0.0  # reset by the read


async def test_join_waits_until_taken_ticks_are_marked_done() -> None:
    queue = TickQueue(10)
    await queue.put(tick(1, 0))
    batch = await queue.get_batch(10)
    joined = asyncio.create_task(queue.join())
    await asyncio.sleep(0)  # join() runs, and waits: one tick is not done
    assert not joined.done()
    queue.task_done(batch.taken)
    await asyncio.wait_for(joined, 1)


def test_queue_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one tick"):
        TickQueue(0)


async def test_receipts_come_with_their_ticks_and_alone_in_put_order() -> None:
    queue = TickQueue(10)
    await queue.put(tick(250, 0), "broker", 1)
    await queue.put(tick(251, 1), "file")  # a source that waits for nothing
    await queue.put_receipt("broker", 2)  # a message sent again: nothing to evaluate
    await queue.put(tick(252, 2), "broker", 3)
    batch = await queue.get_batch(10)
    assert [t.price for t in batch.ticks] == [250, 251, 252]
    assert list(batch.receipts) == [("broker", 1), ("broker", 2), ("broker", 3)]
    assert batch.taken == 4
    queue.task_done(batch.taken)
    async with asyncio.timeout(1):
        await queue.join()  # every item, receipts alone included, is done


async def test_a_closed_queue_takes_nothing_more_and_its_puts_end_when_cancelled() -> None:
    queue = TickQueue(10)
    await queue.put(tick(250, 0), "broker", 1)
    queue.close()
    put = asyncio.create_task(queue.put(tick(251, 1), "broker", 2))
    receipt = asyncio.create_task(queue.put_receipt("broker", 3))
    for _ in range(3):
        await asyncio.sleep(0)  # let both run up to their wait
    assert (put.done(), receipt.done(), queue.qsize()) == (False, False, 1)
    batch = await queue.get_batch(10)  # what was in before is taken as ever
    assert (list(batch.receipts), queue.qsize()) == ([("broker", 1)], 0)
    put.cancel()
    receipt.cancel()
    results = await asyncio.gather(put, receipt, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    assert queue.put_count == 1
