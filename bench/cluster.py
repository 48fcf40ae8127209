"""The cluster's roles, each beside its floor: delivery workers, engine shards, gateways.

**Delivery.** Deliveries per second through a PostgreSQL outbox, with one
and with two delivery workers. A PostgreSQL server of the benchmark's own
(``initdb`` into a temporary directory, a free port of 127.0.0.1, as the
tests start it) holds N alerts with one webhook delivery each. Each run
drains the outbox:

  bare       psycopg alone: one ``UPDATE … SET status = 'sent'`` a row, in
             batches of the workers' size: the floor of marking rows sent;
  1 worker   the service's DeliveryWorkers, claiming rows (``FOR UPDATE SKIP
             LOCKED``), "sending" each with a sender that does nothing, and
             marking it sent: the outbox's own cost;
  2 workers  two of them, each with its own connection, on the same outbox.

Interleaved, best of ``--repeat``. The two workers share this machine's two
cores with the server, so they measure whether claims get in each other's
way, not how a second machine would add.

**Engine shards.** Ticks per second of the engine (bench/engine.py's market
stream: ``--symbols`` symbols, three level rules each): one engine with
every symbol; one shard of two given its own symbols' ticks (what its topic
subscriptions bring); the same shard given every tick (a wildcard topic: it
drops the other half); beside the bare Python loop over the same ticks.

**Gateway fan-out.** bench/fanout.py's clients, once through the
single-process hub (alerts handed to it in process) and once through a
gateway (each alert committed to the PostgreSQL journal, brought to the hub
by LISTEN/NOTIFY and a read by position): frames per second and latency.

    .venv/bin/python bench/cluster.py [--deliveries 5000] [--ticks 1000000]
        [--symbols 1000] [--clients 200] [--alerts 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import sys
import time
from pathlib import Path

import psycopg
import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import SCENARIOS, bare_loop, build  # noqa: E402  (the engine benchmark's stream)
from fanout import SAMPLE_EVERY, make_alerts, raise_file_limit, run_server  # noqa: E402  (the hub benchmark's)

from service.cluster import ClusterConfig  # noqa: E402
from service.delivery.audience import Audience  # noqa: E402
from service.delivery.decide import backoff_of  # noqa: E402
from service.delivery.recorder import AlertRecorder  # noqa: E402
from service.delivery.settings import DeliveryConfig  # noqa: E402
from service.delivery.workers import DeliveryWorkers  # noqa: E402
from service.journal.postgres import PostgresJournal  # noqa: E402
from service.journal.records import Channel, Delivery, Subscriber  # noqa: E402
from service.models import Tick  # noqa: E402
from service.processing.batch import Batch  # noqa: E402
from service.processing.engine_task import TickProcessor  # noqa: E402
from service.rules import RuleEngine  # noqa: E402
from service.streams.rejections import Rejections  # noqa: E402
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


BATCH = 4_096  # ticks a processor takes at once, as the service's engine task does


def engine_rate(processor: TickProcessor, ticks: list[Tick]) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for start in range(0, len(ticks), BATCH):
            processor.process(ticks[start : start + BATCH])
        return len(ticks) / (time.perf_counter() - started)
    finally:
        gc.enable()


def shard_rates(symbols: int, count: int, repeat: int) -> dict[str, float]:
    """Ticks per second: the bare loop, one engine, a shard of two (its ticks; every tick)."""
    rules, ticks = build(SCENARIOS["market"], symbols, count)
    shard = ClusterConfig(shards=2, shard=0)
    own_rules = [rule for rule in rules if shard.owns(rule.symbol)]
    own_ticks = [tick for tick in ticks if shard.owns(tick.symbol)]
    owns = shard.owns
    best: dict[str, float] = {}
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        bare_loop(rules, ticks)
        runs = {
            "bare Python loop": len(ticks) / (time.perf_counter() - started),
            "one engine, every symbol": engine_rate(
                TickProcessor(RuleEngine(rules), Rejections()), ticks
            ),
            "shard 0/2, its ticks": engine_rate(
                TickProcessor(RuleEngine(own_rules), Rejections(), owns=owns), own_ticks
            ),
            "shard 0/2, every tick": engine_rate(
                TickProcessor(RuleEngine(own_rules), Rejections(), owns=owns), ticks
            ),
        }
        for label, rate in runs.items():
            best[label] = max(best.get(label, 0.0), rate)
    best["share of shard 0/2"] = len(own_ticks) / len(ticks)
    return best


# The latency runs publish this many alerts a second: well below either path's capacity.
PACED_PER_S = 100.0


def gateway_rates(server: PostgresServer, clients: int, count: int) -> dict[str, dict[str, float]]:
    """Frames per second as fast as it goes; latency from runs at :data:`PACED_PER_S`."""
    alerts = make_alerts(count)
    paced = alerts[: max(SAMPLE_EVERY, count // 4)]
    results = {}
    for label, mode in (("hub, in process", "hub"), ("gateway, from PostgreSQL", "gateway")):
        fast = asyncio.run(run_server(mode, clients, alerts, server.new_database()))
        slow = asyncio.run(
            run_server(mode, clients, paced, server.new_database(), per_second=PACED_PER_S)
        )
        results[label] = {"rate": fast["rate"], "p50_ms": slow["p50_ms"], "p99_ms": slow["p99_ms"]}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=5_000)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    raise_file_limit()
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
        fanout = gateway_rates(server, args.clients, args.alerts)
    finally:
        server.remove()
    shards = shard_rates(args.symbols, args.ticks, args.repeat)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, PostgreSQL of the "
        f"benchmark's own, best of {args.repeat}"
    )
    print(f"delivery: {args.deliveries:,} webhook deliveries through the outbox")
    floor = best["bare psycopg loop"]
    for label, rate in best.items():
        share = "" if label.startswith("bare") else f"  {rate / floor:6.1%} of bare"
        print(f"  {label:28s} {rate:12,.0f} deliveries/s{share}")
    print(f"  2 workers / 1 worker: {best['2 workers'] / best['1 worker']:.2f}")
    print(f"engine shards: {args.ticks:,} ticks of {args.symbols:,} symbols, 3 rules each")
    bare_rate = shards["bare Python loop"]
    for label in ("bare Python loop", "one engine, every symbol", "shard 0/2, its ticks"):
        share = "" if label.startswith("bare") else f"  {shards[label] / bare_rate:6.1%} of bare"
        print(f"  {label:28s} {shards[label]:12,.0f} ticks/s{share}")
    print(
        f"  {'shard 0/2, every tick':28s} {shards['shard 0/2, every tick']:12,.0f} ticks/s  "
        f"(of which {shards['share of shard 0/2']:.1%} its own)"
    )
    print(
        f"gateway fan-out: {args.clients:,} clients x {args.alerts:,} alerts as fast as they "
        f"go; latency at {PACED_PER_S:g} alerts/s"
    )
    for label, r in fanout.items():
        print(
            f"  {label:28s} {r['rate']:12,.0f} frames/s  p50 {r['p50_ms']:7.2f} ms  "
            f"p99 {r['p99_ms']:7.2f} ms"
        )
    ratio = fanout["gateway, from PostgreSQL"]["rate"] / fanout["hub, in process"]["rate"]
    print(f"  gateway / hub rate: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
