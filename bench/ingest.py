"""MQTT ingest throughput: the MQTT source into the engine against a bare aiomqtt loop.

A Mosquitto of the benchmark's own (127.0.0.1, a free port) carries 200,000
IWM ticks as JSON payloads, published with ``mosquitto_pub -l``. Two
consumers read them, in the same run, interleaved:

  bare     an aiomqtt client whose loop only counts messages;
  service  the MQTT source → the bounded tick queue → the engine task with the
           rules of the shipped alerts.toml: decode, validate, dedup, queue,
           evaluate, commit (the tick log and the engine's state, to a journal
           on disk), then acknowledge.

Two ways of delivering:

  backlog  QoS 1: the ticks are published while the consumer is away, into
           its persistent session; the clock runs from its connect to the
           last tick. Pure consumer speed, nothing else on the CPU.
  live     QoS 0: the consumer is connected while the ticks are published;
           the clock runs from the first tick to the last.

Goal: the service reaches at least 70 % of the bare loop's rate.

    .venv/bin/python bench/ingest.py [--ticks 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.config import load_config  # noqa: E402
from service.delivery.recorder import AlertRecorder, CommitPolicy  # noqa: E402
from service.journal.sqlite import SqliteJournal  # noqa: E402
from service.processing.batch import Batch, Stage, Stages  # noqa: E402
from service.processing.checkpoint import EngineCheckpoint  # noqa: E402
from service.processing.engine_task import TickProcessor, run_engine  # noqa: E402
from service.rules.settings import engine_of  # noqa: E402
from service.streams.mqtt import MqttSource  # noqa: E402
from service.streams.queue import TickQueue  # noqa: E402
from service.streams.rejections import Rejections  # noqa: E402
from service.streams.settings import MqttSourceConfig  # noqa: E402
from service.timestamps import format_timestamp  # noqa: E402
from tests.mosquitto import Mosquitto, find_program  # noqa: E402

GOAL = 0.70
TOPIC = "ticks/IWM"
T0_NS = 1_770_042_600_000_000_000
DEADLINE_S = 120.0
PUBLISH_CHUNK = 20_000

Consumer = Callable[[Mosquitto, int, int, str, asyncio.Event], Awaitable[float]]


def payloads(count: int, seed: int = 7) -> list[str]:
    """IWM wandering around 260 (across the shipped levels), one tick every 10 ms."""
    rng = random.Random(seed)
    price = 260.0
    lines = []
    for i in range(count):
        price = max(0.01, price + rng.gauss(0.0, 0.05) + 0.001 * (260.0 - price))
        ts = format_timestamp(T0_NS + i * 10_000_000)
        lines.append(
            json.dumps({"symbol": "IWM", "price": round(price, 2), "ts": ts, "volume": 100})
        )
    return lines


def publish(broker: Mosquitto, lines: list[str], qos: int) -> None:
    """Publish one message per line, in order, with ``mosquitto_pub -l``.

    QoS 1 goes in chunks, one publisher after the other: Mosquitto 2.0
    disconnects a ``mosquitto_pub -l`` publisher ("out of memory") after about
    69,000 QoS 1 messages. QoS 0 goes in one: a QoS 0 publisher exits before
    the broker has read all it wrote, so a next one could overtake it.
    """
    chunk_size = PUBLISH_CHUNK if qos else len(lines)
    for start in range(0, len(lines), chunk_size):
        chunk = lines[start : start + chunk_size]
        command = [
            find_program("mosquitto_pub"),
            "-h", broker.host, "-p", str(broker.port), "-t", TOPIC, "-q", str(qos), "-l",
        ]  # fmt: skip
        text = "".join(line + "\n" for line in chunk)
        subprocess.run(command, input=text.encode(), check=True, timeout=DEADLINE_S)


async def bare(
    broker: Mosquitto, count: int, qos: int, client_id: str, ready: asyncio.Event
) -> float:
    """Seconds for a bare aiomqtt loop to count ``count`` messages."""
    # The same socket option as the source (TCP_NODELAY), so the ratio measures code, not Nagle.
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=client_id,
        clean_session=False,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    started = time.perf_counter()
    async with client:
        await client.subscribe(TOPIC, qos=qos)
        if qos == 0:
            started = time.perf_counter()
        ready.set()
        received = 0
        async for _message in client.messages:
            received += 1
            if received == count:
                return time.perf_counter() - started
    raise AssertionError("the broker went away")


def counting(target: int, done: asyncio.Event) -> Stage:
    """A stage that tells when the engine has taken in ``target`` ticks."""
    seen = 0

    def stage(batch: Batch) -> Batch:
        nonlocal seen
        seen += len(batch.ticks)
        if seen >= target:
            done.set()
        return batch

    return stage


async def service(
    broker: Mosquitto, count: int, qos: int, client_id: str, ready: asyncio.Event
) -> float:
    """Seconds for the MQTT source and the engine to take in and evaluate ``count`` ticks.

    Wired as the service wires them: every tick is covered by a commit to a
    journal on disk (WAL, synchronous = FULL: its tick log, and the engine's
    states in full once a second) before its message is acknowledged.
    """
    config = load_config(REPO / "alerts.toml")
    rejections = Rejections()
    done = asyncio.Event()
    source = MqttSource(
        MqttSourceConfig(
            name="bench", host=broker.host, port=broker.port, qos=qos, client_id=client_id
        ),
        rejections,
    )
    with tempfile.TemporaryDirectory(prefix="strykr-bench-journal-") as directory:
        journal = SqliteJournal(Path(directory) / "alerts.db")
        journal.open()
        engine = engine_of(config.engine, config.rules)
        checkpoint = EngineCheckpoint(engine)
        recorder = AlertRecorder(
            journal,
            lambda _alert: [],
            state=checkpoint.take,
            settle=lambda _name, receipts: source.settle(receipts),
            policy=CommitPolicy(
                every_ticks=config.engine.commit_every_ticks,
                within_s=config.engine.commit_within_ms / 1000,
            ),
        )
        stages = Stages([("journal", recorder), ("count", counting(count, done))])
        processor = TickProcessor(engine, rejections, stages=stages, checkpoint=checkpoint)
        queue = TickQueue(config.engine.queue_size)
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(source.run(queue))
            engine_task = group.create_task(run_engine(queue, processor, recorder))
            while not source.connected:  # noqa: ASYNC110 - a plain flag of the source
                await asyncio.sleep(0.001)
            if qos == 0:
                started = time.perf_counter()
            ready.set()
            await done.wait()
            elapsed = time.perf_counter() - started
            reader.cancel()
            engine_task.cancel()
        journal.close()
    if rejections.total:
        raise AssertionError(f"ticks rejected: {dict(rejections.counts)}")
    return elapsed


async def run_once(
    consumer: Consumer, broker: Mosquitto, lines: list[str], mode: str, run: int
) -> float:
    count = len(lines)
    client_id = f"bench-{consumer.__name__}-{mode}-{run}"
    if mode == "backlog":
        # Make the persistent session, leave, fill it, then time the drain.
        async with aiomqtt.Client(
            broker.host, broker.port, identifier=client_id, clean_session=False
        ) as client:
            await client.subscribe(TOPIC, qos=1)
        await asyncio.to_thread(publish, broker, lines, 1)
        return await asyncio.wait_for(
            consumer(broker, count, 1, client_id, asyncio.Event()), DEADLINE_S
        )
    ready = asyncio.Event()
    task = asyncio.create_task(consumer(broker, count, 0, client_id, ready))
    await asyncio.wait_for(ready.wait(), 10)
    publisher = asyncio.create_task(asyncio.to_thread(publish, broker, lines, 0))
    elapsed = await asyncio.wait_for(task, DEADLINE_S)
    await publisher
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines = payloads(args.ticks)
    consumers: list[Consumer] = [bare, service]
    best: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="strykr-bench-") as directory:
        broker = Mosquitto(Path(directory) / "mosquitto")
        broker.start()
        try:
            for run in range(args.repeat):
                for mode in ("backlog", "live"):
                    for consumer in consumers:
                        elapsed = await run_once(consumer, broker, lines, mode, run)
                        key = (mode, consumer.__name__)
                        rate = args.ticks / elapsed
                        best[key] = max(best.get(key, 0.0), rate)
                        print(
                            f"run {run + 1} {mode:8} {consumer.__name__:8} {rate:>10,.0f} ticks/s"
                        )
        finally:
            broker.stop()
    print(f"\n{args.ticks:,} ticks, best of {args.repeat}; Python {platform.python_version()}")
    for mode in ("backlog", "live"):
        floor, ours = best[(mode, "bare")], best[(mode, "service")]
        verdict = "meets" if ours / floor >= GOAL else "misses"
        print(
            f"{mode:8} bare {floor:>9,.0f}/s  service {ours:>9,.0f}/s  "
            f"{ours / floor:6.1%} of bare ({verdict} the {GOAL:.0%} goal)"
        )


if __name__ == "__main__":
    asyncio.run(main())
