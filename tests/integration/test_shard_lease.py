"""Engine shards on a shared journal: one process runs a shard, the next waits; the feed of alerts.

The tests' own PostgreSQL server: the shard's advisory lock goes to one
lease at a time, passes on when its holder's connection closes, and a writer
that lost it can store nothing more. The alert feed gives every alert
committed by any writer once, in commit order, with or without a
notification.
"""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from service.cluster import ClusterConfig
from service.errors import JournalError
from service.journal.alert_feed import AlertFeed
from service.journal.postgres import PostgresJournal
from service.journal.records import Checkpoint
from service.journal.shard_lease import ShardLease
from service.models import AlertPayload
from tests.builders import alert_at, at
from tests.postgres import PostgresServer
from tests.waiting import eventually

SHARD = ClusterConfig(shards=2, shard=1)


async def test_a_shard_runs_in_one_process_and_its_standby_takes_over_when_it_goes(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    first, second = PostgresJournal(url), PostgresJournal(url)
    first.open()
    second.open()
    active = ShardLease(url, SHARD, on_active=first.fence, poll_s=0.05)
    standby = ShardLease(url, SHARD, on_active=second.fence, poll_s=0.05)
    other_shard = ShardLease(url, ClusterConfig(shards=2, shard=0), poll_s=0.05)
    stop = asyncio.Event()
    try:
        assert await active.acquire(stop)
        assert await other_shard.acquire(stop)  # another shard's lock is another lock
        waiting = asyncio.create_task(standby.acquire(stop))
        await eventually(lambda: standby.state == "standby", what="the standby waiting")
        assert not waiting.done()
        first.record_alerts([(alert_at(1), [])], now_ns=at(0), checkpoint=Checkpoint(scope="1/2"))
        await active.close()  # as a killed process's connection closes
        assert await asyncio.wait_for(waiting, timeout=5)
        assert standby.state == "active"
        # The one that lost the lock stores nothing more, alerts or state.
        with pytest.raises(JournalError, match="lock is no longer held by this process"):
            first.record_alerts([(alert_at(2), [])], now_ns=at(0))
        assert second.record_alerts([(alert_at(2), [])], now_ns=at(0)) == [alert_at(2)]
        assert second.alert_count() == 2
    finally:
        for lease in (active, standby, other_shard):
            await lease.close()
        first.close()
        second.close()


async def test_a_standby_stops_waiting_when_told_to(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database()
    active = ShardLease(url, SHARD, poll_s=0.05)
    standby = ShardLease(url, SHARD, poll_s=0.05)
    stop = asyncio.Event()
    try:
        assert await active.acquire(stop)
        waiting = asyncio.create_task(standby.acquire(stop))
        await eventually(lambda: standby.state == "standby", what="the standby waiting")
        stop.set()
        assert await asyncio.wait_for(waiting, timeout=5) is False
    finally:
        await active.close()
        await standby.close()


async def test_the_alert_feed_gives_each_alert_of_every_writer_once_in_commit_order(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    writers = [PostgresJournal(url), PostgresJournal(url)]
    reader = PostgresJournal(url)
    for journal in (*writers, reader):
        journal.open()
    writers[0].record_alerts([(alert_at(0), [])], now_ns=at(0))  # before: not the feed's
    got: list[AlertPayload] = []
    # A catch-up read this rare: only notifications can bring the alerts in time.
    feed = AlertFeed(url, reader, got.append, catch_up_s=3600)
    feed.start()
    listening = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: feed.listening, what="the feed listening")
        for n in range(1, 41):
            writers[n % 2].record_alerts([(alert_at(n), [])], now_ns=at(0))
        await eventually(lambda: len(got) == 40, what="40 alerts through the feed")
        assert [p["id"] for p in got] == [alert_at(n).id for n in range(1, 41)]
        assert feed.notifications >= 1
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        for journal in (*writers, reader):
            journal.close()


async def test_a_shard_whose_lock_connection_is_cut_says_so_and_stops_holding(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    lease = ShardLease(url, SHARD, poll_s=0.05)
    try:
        assert await lease.acquire(asyncio.Event())
        holding = asyncio.create_task(lease.hold())
        # The server ends the lock's connection (a network split, a failover of the server).
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (lease.backend_pid,))
        with pytest.raises(JournalError, match="the lock's connection is lost"):
            await asyncio.wait_for(holding, timeout=5)
        assert lease.state == "lost"
    finally:
        await lease.close()


def test_a_reader_going_on_from_its_last_position_misses_no_alert_of_concurrent_writers(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    per_writer = 150
    writers = [PostgresJournal(url) for _ in range(3)]
    reader = PostgresJournal(url)
    for journal in (*writers, reader):
        journal.open()
    done = threading.Event()
    seen: list[str] = []

    def write(index: int) -> None:
        for n in range(per_writer):
            alert = alert_at(index * per_writer + n)
            writers[index].record_alerts([(alert, [])], now_ns=at(0))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(writers))]
    try:
        for thread in threads:
            thread.start()
        last = 0
        # Read as a gateway does, as often as it can, while the writers commit; once
        # they are done, one more read.
        while not done.is_set():
            if not any(thread.is_alive() for thread in threads):
                done.set()
            for position, payload in reader.alerts_since_seq(last, limit=1_000):
                seen.append(str(payload["id"]))
                last = position
        expected = {alert_at(n).id for n in range(per_writer * len(writers))}
        assert len(seen) == len(set(seen))
        assert set(seen) == expected, f"{len(expected - set(seen))} alerts skipped"
    finally:
        for thread in threads:
            thread.join(30)
        for journal in (*writers, reader):
            journal.close()
