"""Websocket fan-out: the dashboards' hub against a bare ``websockets`` broadcast.

1,000 websocket clients subscribe to one symbol; 10,000 alerts go out to
every one of them (10 M frames). Two servers, in the same run, on 127.0.0.1:

  bare  ``websockets.broadcast()`` of each alert's frame to every connection;
  hub   :class:`service.hub.server.WebsocketHub.publish_alert`: the same
        frames, through its per-client checks (write-buffer bound, queue of
        a slow client, symbol index).

Both encode each alert once (the ALERT JSON the service sends). The clients
run in a second process (a minimal websocket reader written for speed, so
that the server, not the clients, is measured) and note when each frame
arrives; one in ten alerts is timed on every client. Latency is from the
server's publish call to the client's receipt (both read CLOCK_MONOTONIC).

Goal: the hub delivers at least 80 % of the bare broadcast's rate, with a
p99 latency within 2x of it.

    .venv/bin/python bench/fanout.py [--clients 1000] [--alerts 10000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import json
import os
import platform
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.hub.protocol import encode  # noqa: E402
from service.hub.server import WebsocketHub  # noqa: E402
from service.hub.settings import WebsocketHubConfig  # noqa: E402
from service.journal.alert_feed import AlertFeed  # noqa: E402
from service.journal.postgres import PostgresJournal  # noqa: E402
from service.models import AlertEvent, alert_id  # noqa: E402

RATE_GOAL = 0.80
P99_GOAL = 2.0
SAMPLE_EVERY = 10  # alerts timed on every client
BURST = 1  # alerts published per turn of the event loop
DEADLINE_S = 300.0


def make_alerts(count: int) -> list[AlertEvent]:
    alerts = []
    for n in range(count):
        key = {
            "rule": "iwm-below-255",
            "kind": "break_below",
            "level": 255.0,
            "symbol": "IWM",
            "ts_ns": 1_770_042_600_000_000_000 + n * 1_000_000,
            "price": 254.6,
        }
        alerts.append(AlertEvent(id=alert_id(**key), **key))  # type: ignore[arg-type]
    return alerts


# --- the clients' process --------------------------------------------------------------------


class Reader(asyncio.Protocol):
    """One client: handshake, subscribe, then count frames and time every tenth alert."""

    def __init__(self, alerts: int, done: asyncio.Event, finished: list[int]) -> None:
        self.alerts = alerts
        self.done = done
        self.finished = finished
        self.buffer = bytearray()
        self.handshaken = asyncio.get_running_loop().create_future()
        self.frames = -1  # the first frame is the subscribe reply
        self.complete = False
        self.times = array.array("q", bytes(8 * -(-alerts // SAMPLE_EVERY)))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def subscribe(self) -> None:
        assert self.transport is not None
        payload = json.dumps({"op": "subscribe", "symbols": ["IWM"]}).encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buffer = self.buffer
        buffer += data
        if not self.handshaken.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del buffer[: end + 4]
            self.handshaken.set_result(None)
        position = 0
        size = len(buffer)
        frames = self.frames
        times = self.times
        while size - position >= 2:
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            if size - position < header + length:
                break
            position += header + length
            frames += 1
            if frames > 0 and (frames - 1) % SAMPLE_EVERY == 0:
                times[(frames - 1) // SAMPLE_EVERY] = now
        del buffer[:position]
        self.frames = frames
        if frames >= self.alerts and not self.complete:
            self.complete = True
            self.finished[0] += 1
            if self.finished[0] == self.finished[1]:
                self.done.set()


async def clients_main(port: int, count: int, alerts: int, out: str) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    finished = [0, count]
    readers: list[Reader] = []
    for _ in range(count):
        _, reader = await loop.create_connection(
            lambda: Reader(alerts, done, finished), "127.0.0.1", port
        )
        await reader.handshaken
        reader.subscribe()
        readers.append(reader)
    for _ in range(int(DEADLINE_S * 100)):  # every subscribe answered
        if all(reader.frames >= 0 for reader in readers):
            break
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    try:
        await asyncio.wait_for(done.wait(), DEADLINE_S)
    except TimeoutError:
        short = sorted(reader.frames for reader in readers if not reader.complete)
        print(f"clients: {len(short)} incomplete, frames {short[:5]}…", file=sys.stderr)
        raise
    Path(out).write_bytes(b"".join(r.times.tobytes() for r in readers))  # noqa: ASYNC240 (after the clock)
    for reader in readers:
        assert reader.transport is not None
        reader.transport.close()


# --- the server's process --------------------------------------------------------------------


class Stub:
    def levels(self, symbols: Any, viewer: Any = None) -> list[dict[str, object]]:
        return []

    def articles(self, symbols: Any) -> dict[str, dict[str, object]]:
        return {}

    def alerts_after(
        self, since: Any, symbols: Any, *, limit: Any = None, viewer: Any = None
    ) -> list[Any]:
        return []


async def run_server(
    mode: str,
    clients: int,
    alerts: list[AlertEvent],
    journal_url: str | None = None,
    per_second: float | None = None,
) -> dict[str, float]:
    """Start a server, the clients' process, publish every alert; return rate and latency.

    ``gateway`` (bench/cluster.py's, with ``journal_url``): each alert is committed to a
    PostgreSQL journal, and reaches the hub through the gateway's feed (LISTEN/NOTIFY,
    then a read by position), as in a cluster: latency is from commit to client.
    ``per_second``: alerts are published at this pace (latency below saturation), not
    as fast as they go.
    """
    connections: set[ServerConnection] = set()
    publish = None
    server_task = None
    bare_server = None
    feed_task = None
    journals: list[PostgresJournal] = []
    threads: list[tuple[threading.Thread, queue.SimpleQueue[AlertEvent | None]]] = []
    if mode in ("hub", "gateway"):
        hub = WebsocketHub(
            # As the bare server: no pings (the clients here do not answer them), and
            # every client from one address.
            WebsocketHubConfig(
                port=0,
                max_pending_alerts=len(alerts) + 1,
                ping_interval_seconds=3600,
                max_connections_per_client=0,
            ),
            history=Stub(),
            view=Stub(),
        )
        server_task = asyncio.create_task(hub.run())
        await hub.listening.wait()
        port = hub.port
        publish = hub.publish_alert
        if mode == "gateway":
            assert journal_url is not None
            writer, reader = PostgresJournal(journal_url), PostgresJournal(journal_url)
            journals += [writer, reader]
            feed = AlertFeed(journal_url, reader, hub.publish_recorded)
            feed.start()
            feed_task = asyncio.create_task(feed.run())
            while not feed.listening:  # noqa: ASYNC110 (bounded by the feed's connect timeout)
                await asyncio.sleep(0.01)

            # The writer stands for an engine in another process: a thread of its own
            # commits what has come since its last commit, in one transaction, as the
            # engine's journal stage does.
            waiting: queue.SimpleQueue[AlertEvent | None] = queue.SimpleQueue()

            def commit_all() -> None:
                while (first := waiting.get()) is not None:
                    batch = [first]
                    while not waiting.empty():
                        more = waiting.get()
                        if more is None:
                            writer.record_alerts([(a, []) for a in batch], now_ns=time.time_ns())
                            return
                        batch.append(more)
                    writer.record_alerts([(a, []) for a in batch], now_ns=time.time_ns())

            committer = threading.Thread(target=commit_all, daemon=True)
            committer.start()
            threads.append((committer, waiting))

            def publish(alert: AlertEvent) -> None:
                waiting.put(alert)
    else:

        async def handler(connection: ServerConnection) -> None:
            await connection.recv()
            await connection.send(json.dumps({"type": "subscribed"}))
            connections.add(connection)
            with contextlib.suppress(Exception):
                await connection.wait_closed()
            connections.discard(connection)

        bare_server = await serve(
            handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_queue=4
        )
        port = next(iter(bare_server.sockets)).getsockname()[1]

        def publish(alert: AlertEvent) -> None:
            broadcast(connections, encode({"type": "alert", "data": alert.to_dict()}), text=True)

    assert port is not None
    with tempfile.NamedTemporaryFile(suffix=".times") as times_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--client-process",
            str(port),
            str(clients),
            str(len(alerts)),
            times_file.name,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), DEADLINE_S)
        assert ready.strip() == b"ready", ready
        published = array.array("q")
        started = time.perf_counter_ns()
        for index, alert in enumerate(alerts):
            if per_second is not None:
                due = started + round(index / per_second * 1e9)
                delay = (due - time.perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
            if index % SAMPLE_EVERY == 0:
                published.append(time.perf_counter_ns())
            publish(alert)
            if index % BURST == 0:
                await asyncio.sleep(0)
        await asyncio.wait_for(process.wait(), DEADLINE_S)
        assert process.returncode == 0
        arrivals = array.array("q")
        arrivals.frombytes(Path(times_file.name).read_bytes())  # noqa: ASYNC240 (after the clock)
    for thread, inbox in threads:
        inbox.put(None)
        thread.join(DEADLINE_S)
    for task in (feed_task, server_task):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for journal in journals:
        journal.close()
    if bare_server is not None:
        bare_server.close()
        await bare_server.wait_closed()

    samples = len(published)
    latencies = sorted(
        arrivals[client * samples + k] - published[k]
        for client in range(clients)
        for k in range(samples)
    )
    last = max(arrivals[client * samples + samples - 1] for client in range(clients))
    elapsed = (last - started) / 1e9
    return {
        "rate": clients * len(alerts) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] / 1e6,
        "p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
        "seconds": elapsed,
    }


async def server_main(clients: int, count: int, repeat: int) -> int:
    alerts = make_alerts(count)
    results: dict[str, list[dict[str, float]]] = {"bare": [], "hub": []}
    for _ in range(repeat):
        for mode in ("bare", "hub"):
            results[mode].append(await run_server(mode, clients, alerts))
    best = {mode: max(runs, key=lambda r: r["rate"]) for mode, runs in results.items()}
    print(f"fan-out: {clients:,} clients x {count:,} alerts, best of {repeat}")
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus")
    for mode in ("bare", "hub"):
        r = best[mode]
        print(
            f"  {mode:4}  {r['rate']:>12,.0f} msgs/s  p50 {r['p50_ms']:7.2f} ms  "
            f"p99 {r['p99_ms']:7.2f} ms  ({r['seconds']:.1f} s)"
        )
    rate = best["hub"]["rate"] / best["bare"]["rate"]
    p99 = best["hub"]["p99_ms"] / best["bare"]["p99_ms"]
    print(f"  hub/bare rate {rate:.1%} (goal >= {RATE_GOAL:.0%}), ", end="")
    print(f"p99 {p99:.2f}x (goal <= {P99_GOAL:g}x)")
    return 0 if rate >= RATE_GOAL and p99 <= P99_GOAL else 1


def raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    raise_file_limit()
    if len(sys.argv) > 1 and sys.argv[1] == "--client-process":
        port, count, alerts, out = sys.argv[2:6]
        asyncio.run(clients_main(int(port), int(count), int(alerts), out))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    return asyncio.run(server_main(args.clients, args.alerts, args.repeat))


if __name__ == "__main__":
    sys.exit(main())
