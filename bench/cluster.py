"""Deliveries per second through a PostgreSQL outbox, with one and with two delivery workers.

A PostgreSQL server of the benchmark's own (``initdb`` into a temporary
directory, a free port of 127.0.0.1, as the tests start it) holds N alerts
with one webhook delivery each. Each run drains the outbox:

  bare       psycopg alone: one ``UPDATE … SET status = 'sent'`` a row, in
             batches of the workers' size: the floor of marking rows sent;
  1 worker   the service's DeliveryWorkers, claiming rows (``FOR UPDATE SKIP
             LOCKED``), "sending" each with a sender that does nothing, and
             marking it sent: the outbox's own cost;
  2 workers  two of them, each with its own connection, on the same outbox.

Interleaved, best of ``--repeat``. The two workers share this machine's two
cores with the server, so they measure whether claims get in each other's
way, not how a second machine would add.

    .venv/bin/python bench/cluster.py [--deliveries 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import time
from pathlib import Path

import psycopg
import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fanout import make_alerts  # noqa: E402  (the alerts of the hub benchmark)

from service.delivery.audience import Audience  # noqa: E402
from service.delivery.decide import backoff_of  # noqa: E402
from service.delivery.recorder import AlertRecorder  # noqa: E402
from service.delivery.settings import DeliveryConfig  # noqa: E402
from service.delivery.workers import DeliveryWorkers  # noqa: E402
from service.journal.postgres import PostgresJournal  # noqa: E402
from service.journal.records import Channel, Delivery, Subscriber  # noqa: E402
from service.processing.batch import Batch  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

CONCURRENCY = 16  # the default [delivery] concurrency
DEADLINE_S = 300.0


class NullSender:
    """A webhook channel that sends nothing: what is left is the outbox's work."""

    name: Channel = "webhook"
    concurrency = CONCURRENCY

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None:
        return None

    async def close(self) -> None:
        return None


def fill(url: str, count: int) -> Audience:
    """A fresh outbox of ``count`` webhook deliveries; the audience that planned them."""
    journal = PostgresJournal(url)
    journal.open()
    hook = Subscriber(id="ops", webhook="https://hooks.example.net/x", webhook_secret="s" * 16)
    audience = Audience(journal, static=[hook], channels=["webhook"])
    audience.reload()
    recorder = AlertRecorder(journal, audience.plan)
    made = make_alerts(count)
    for start in range(0, count, 500):
        recorder(Batch((), made[start : start + 500]))
    journal.close()
    return audience


def bare(url: str, count: int) -> float:
    """psycopg alone: every pending row marked sent, a batch of rows a transaction."""
    with psycopg.connect(url, autocommit=True) as db:
        started = time.perf_counter()
        done = 0
        while done < count:
            with db.transaction():
                rows = db.execute(
                    "SELECT id FROM deliveries WHERE status = 'pending' ORDER BY id LIMIT %s",
                    (CONCURRENCY * 4,),
                ).fetchall()
                for (row_id,) in rows:
                    db.execute("UPDATE deliveries SET status = 'sent' WHERE id = %s", (row_id,))
            done += len(rows)
            if not rows:
                break
        return count / (time.perf_counter() - started)


async def drain(url: str, audience: Audience, workers: int, count: int) -> float:
    """``workers`` DeliveryWorkers, each with its own connection, until the outbox is empty."""
    journals = [PostgresJournal(url) for _ in range(workers)]
    sets = [
        DeliveryWorkers(
            journal,
            [NullSender()],
            audience,
            max_attempts=3,
            backoff=backoff_of(DeliveryConfig()),
            release_on_start=False,
            poll_s=0.01,
        )
        for journal in journals
    ]
    probe = PostgresJournal(url)
    started = time.perf_counter()
    tasks = [asyncio.create_task(one.run()) for one in sets]
    try:
        # Bounded: the outbox empties, or the deadline ends the run.
        while probe.pending_count() and time.perf_counter() - started < DEADLINE_S:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        for one in sets:
            one.stop()
        await asyncio.gather(*tasks)
        for journal in (*journals, probe):
            journal.close()
    sent = sum(one.outcomes["webhook", "sent"] for one in sets)
    if sent != count:
        raise SystemExit(f"{sent} of {count} deliveries sent: the outbox lost or repeated some")
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    server = PostgresServer()
    server.start()
    try:
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for label, workers in (("bare psycopg loop", 0), ("1 worker", 1), ("2 workers", 2)):
                url = server.new_database()
                audience = fill(url, args.deliveries)
                if workers == 0:
                    rate = bare(url, args.deliveries)
                else:
                    rate = asyncio.run(drain(url, audience, workers, args.deliveries))
                best[label] = max(best.get(label, 0.0), rate)
    finally:
        server.remove()
    print(
        f"python {platform.python_version()}, PostgreSQL of the benchmark's own, "
        f"{args.deliveries:,} deliveries, best of {args.repeat}"
    )
    floor = best["bare psycopg loop"]
    for label, rate in best.items():
        share = "" if label.startswith("bare") else f"  {rate / floor:6.1%} of bare"
        print(f"  {label:20s} {rate:10,.0f} deliveries/s{share}")
    print(f"  2 workers / 1 worker: {best['2 workers'] / best['1 worker']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
