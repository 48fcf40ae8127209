"""A whole cluster on one machine, one process of each role killed mid-stream: nothing lost.

The tests' own PostgreSQL server and Mosquitto; real processes: two engine
shards (IWM is shard 1's, QQQ shard 0's) and a standby of shard 1, two
delivery workers, two gateways; an aiosmtpd server, a webhook receiver, and
two dashboards connected to different gateways. A deterministic QoS 1 stream
is published at a steady rate, and at seeded points the active engine of
shard 1, a delivery worker and a gateway are SIGKILLed. The standby takes the
shard over from its checkpoint and MQTT session; the other worker sends what
the dead one had claimed once its lease ends; the dashboard of the dead
gateway reconnects to the other one with ``since``. At the end the journal
holds exactly the alerts of one uninterrupted run of the same ticks, and each
reached the mail server, the webhook and both dashboards once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
from collections import Counter
from pathlib import Path

import websockets

from service.cluster import shard_of
from service.journal.postgres import PostgresJournal
from service.models import Tick
from tests.builders import tick
from tests.conftest import ServiceProcess, StartService
from tests.feeds import wandering
from tests.helpers import uninterrupted
from tests.mosquitto import Mosquitto, free_port
from tests.postgres import PostgresServer
from tests.publisher import Publisher
from tests.receivers import HttpReceiver, SmtpServer
from tests.waiting import eventually

TICKS = 2_400  # two symbols, one tick a second each in tick time
PER_SECOND = 200.0  # published in 12 s of real time
ENDS = {"END": 1, "DIA": 0}  # a marker symbol per shard: its alert is the shard's last
SHARD_OF = {"IWM": 1, "QQQ": 0, **ENDS}

RULES = """
[[rules]]
id = "iwm-below-257"
symbol = "IWM"
level = 257.0
direction = "below"
confirm_ticks = 3
hysteresis = 0.5

[[rules]]
id = "iwm-above-263"
symbol = "IWM"
level = 263.0
direction = "above"
confirm_seconds = 4
hysteresis = 0.5
cooldown_seconds = 60

[[rules]]
id = "iwm-bar-below-259"
symbol = "IWM"
level = 259.0
direction = "below"
trigger = "bar_close"
bar = "30s"
hysteresis = 0.3

[[rules]]
id = "iwm-above-vwap"
symbol = "IWM"
condition = "cross_above"
level = 'vwap("2m")'
hysteresis = 0.3
cooldown_seconds = 120

[[rules]]
id = "qqq-range"
type = "range"
symbol = "QQQ"
low = 495.0
high = 505.0
hysteresis = 0.5
cooldown_seconds = 60

[[rules]]
id = "qqq-bar-above-502"
symbol = "QQQ"
level = 502.0
direction = "above"
trigger = "bar_close"
bar = "1m"

[[rules]]
id = "end"
symbol = "END"
level = 97.0
direction = "below"

[[rules]]
id = "dia-end"
symbol = "DIA"
level = 97.0
direction = "below"
"""


def stream() -> list[Tick]:
    """IWM and QQQ in turn, pulled back to 260 and 500 while they wander across the levels."""
    last = TICKS // 2
    ticks = wandering({"IWM": 260.0, "QQQ": 500.0}, TICKS, seed=18)
    ends = [tick(100.0, last, symbol=s) for s in ENDS] + [
        tick(95.0, last + 1, symbol=s) for s in ENDS
    ]
    return [*ticks, *ends]


def config(tmp_path: Path, database: str, broker: Mosquitto, smtp_port: int, hook: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(
        f"""
[service]
log_format = "json"
journal = "{database}"
stats_seconds = 0

[websocket]
port = 0

[http]
port = 0

[engine]
stale_seconds = 0

[delivery]
lease_seconds = 3

[email]
host = "127.0.0.1"
port = {smtp_port}
starttls = false
from = "alerts@strykr.test"

[[sources]]
kind = "mqtt"
name = "feed"
url = "{broker.url}"
topic = "ticks/#"
qos = 1
client_id = "strykr-cluster"

[[subscribers]]
id = "desk"
email = "desk@example.com"
webhook = "{hook}"
webhook_secret = "a-webhook-secret-of-the-desk"
symbols = ["IWM", "QQQ", "END", "DIA"]
{RULES}
"""
    )
    return path


class Dashboard:
    """A trader's dashboard: subscribed on one gateway; when it goes, on the next with since."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.received: list[str] = []
        self.connections = 0

    async def run(self) -> None:
        for attempt in range(40):
            url = self.urls[attempt % len(self.urls)]
            request: dict[str, object] = {"op": "subscribe", "symbols": list(SHARD_OF)}
            if self.received:
                request["since"] = self.received[-1]
            request["ticks"] = False
            with contextlib.suppress(OSError, websockets.ConnectionClosed):
                async with websockets.connect(url, open_timeout=5) as connection:
                    self.connections += 1
                    await connection.send(json.dumps(request))
                    async for message in connection:
                        frame = json.loads(message)
                        if frame.get("type") == "alert":
                            self.received.append(frame["data"]["id"])
            await asyncio.sleep(0.2)


async def test_a_cluster_with_a_process_of_each_role_killed_delivers_every_alert_once(
    tmp_path: Path,
    postgres_server: PostgresServer,
    mosquitto: Mosquitto,
    smtp_server: SmtpServer,
    http_receiver: HttpReceiver,
    start_service: StartService,
) -> None:
    assert all(shard_of(symbol, 2) == shard for symbol, shard in SHARD_OF.items())
    database = postgres_server.new_database()
    path = config(tmp_path, database, mosquitto, smtp_server.port, http_receiver.url("/hook"))
    ticks = stream()
    expected = uninterrupted(path, ticks)
    expected_ids = [alert.id for alert in expected]
    assert len(expected) >= 20, f"the stream must break the levels often, got {len(expected)}"
    assert {alert.symbol for alert in expected} == set(SHARD_OF)
    rng = random.Random(18)
    engine_kill, delivery_kill, gateway_kill = (rng.randrange(400, TICKS - 400) for _ in range(3))

    def run(*args: str) -> ServiceProcess:
        return start_service("run", "--config", str(path), "--http-port", "0", *args)

    shard1 = run("--role", "engine", "--shard", "1/2")
    shard1.wait_for("engine_shard_active", timeout=20)
    standby = run("--role", "engine", "--shard", "1/2")
    standby.wait_for("engine_shard_standby", timeout=20)
    shard0 = run("--role", "engine", "--shard", "0/2")
    workers = [run("--role", "delivery") for _ in range(2)]
    ws_ports = [free_port(), free_port()]
    gateways = [run("--role", "gateway", "--ws-port", str(port)) for port in ws_ports]
    for process in (shard1, shard0):
        process.wait_for("mqtt_connected", timeout=20)
    for process in (*workers, *gateways):
        process.wait_for("service_started", timeout=20)
    urls = [f"ws://127.0.0.1:{port}" for port in ws_ports]
    dashboards = [Dashboard(urls), Dashboard([urls[1], urls[0]])]
    readers = [asyncio.create_task(d.run()) for d in dashboards]
    await eventually(lambda: all(d.connections for d in dashboards), what="dashboards connected")
    journal = PostgresJournal(database)
    publisher = Publisher(mosquitto, ticks, PER_SECOND, client_id="cluster-feed")
    try:
        kills = sorted(
            [(engine_kill, shard1), (delivery_kill, workers[0]), (gateway_kill, gateways[0])],
            key=lambda kill: kill[0],
        )
        for point, process in kills:
            await eventually(lambda point=point: publisher.sent >= point, within=60)
            assert process.stop(signal.SIGKILL) == -signal.SIGKILL
        await eventually(
            lambda: any(e.get("event") == "engine_shard_active" for e in standby.events),
            within=15,
            what="the standby running the shard",
        )
        await eventually(lambda: publisher.sent == len(ticks), within=60, what="all published")
        publisher.wait(timeout=5)
        journal.open()
        ends = {alert.id for alert in expected if alert.symbol in ENDS}

        def journaled() -> list[str]:
            return [str(p["id"]) for _, p in journal.alerts_since_seq(0, limit=10_000)]

        await eventually(lambda: ends <= set(journaled()), within=60, what="both shards' ends")
        await eventually(lambda: journal.pending_count() == 0, within=60, what="all delivered")
        await eventually(
            lambda: all(len(d.received) >= len(expected) for d in dashboards),
            within=30,
            what="every alert on both dashboards",
        )
        # The journal: the alerts of one run, no more, in each shard's order.
        stored = journaled()
        assert sorted(stored) == sorted(expected_ids)
        for symbol in SHARD_OF:
            of_symbol = {a.id for a in expected if a.symbol == symbol}
            assert [i for i in stored if i in of_symbol] == [
                i for i in expected_ids if i in of_symbol
            ]
        assert standby.wait_for("engine_state_restored", timeout=1)
        # Each channel: each alert once to the desk.
        mails = Counter(
            str(mail.message["X-Strykr-Alert-Id"] or mail.message["Message-ID"])
            for mail in smtp_server.receiver.mails
        )
        hooks = Counter(r.headers["X-Strykr-Alert-Id"] for r in http_receiver.posts("/hook"))
        assert sorted(mails) == sorted(expected_ids)
        assert sorted(hooks) == sorted(expected_ids)
        # A send in flight when its worker is killed is sent again by the other worker (its
        # row was never marked): at most that one, with the same Message-ID and alert id,
        # which the receiver drops. Every other alert went out exactly once.
        assert sum(mails.values()) - len(mails) <= 1, mails
        assert sum(hooks.values()) - len(hooks) <= 1, hooks
        for dashboard in dashboards:
            assert sorted(dashboard.received) == sorted(expected_ids)
        assert dashboards[0].connections >= 2  # it moved to the gateway that lived
    finally:
        publisher.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        journal.close()
    for process in (standby, shard0, workers[1], gateways[1]):
        assert process.stop(signal.SIGTERM) == 0
