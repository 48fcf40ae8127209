"""Processes of one role each on a shared PostgreSQL journal.

Real processes (``strykr-alerts run --role …``), the tests' own PostgreSQL
server and Mosquitto, a webhook receiver on 127.0.0.1: every alert the engine
journals is sent once, by one of two delivery processes; every role answers
for itself on ``/readyz`` and ``/metrics``; a rule set through the API
process fires in the engine and reaches a dashboard on a gateway, with the
engine's prices, and the API draws the engine's bars.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import cast

import aiomqtt
import websockets

from service.journal.postgres import PostgresJournal
from service.journal.records import DeliveryRecord
from tests.builders import tick
from tests.conftest import ServiceProcess, StartService
from tests.feeds import payload
from tests.integration.http_service import ADMIN_TOKEN, http_config
from tests.mosquitto import Mosquitto, free_port
from tests.postgres import PostgresServer
from tests.receivers import HttpReceiver
from tests.waiting import eventually, wait_until


def cluster_config(tmp_path: Path, url: str, hook: str, extra: str = "") -> Path:
    """The HTTP tests' config (replay, rules) on a PostgreSQL journal, with a webhook on IWM."""
    desk = extra + (
        f'[[subscribers]]\nid = "iwm-desk"\nwebhook = "{hook}"\n'
        'webhook_secret = "a-webhook-secret-of-the-desk"\nsymbols = ["IWM"]\n'
    )
    text = http_config(tmp_path, extra=desk).replace(
        f'journal = "{tmp_path / "alerts.db"}"', f'journal = "{url}"\nlog_format = "json"'
    )
    config = tmp_path / "alerts.toml"
    config.write_text(text)
    return config


async def test_an_engine_and_two_delivery_processes_send_each_alert_once(
    tmp_path: Path,
    postgres_server: PostgresServer,
    http_receiver: HttpReceiver,
    start_service: StartService,
) -> None:
    url = postgres_server.new_database()
    config = cluster_config(tmp_path, url, http_receiver.url("/hook"))
    workers = [
        start_service("run", "--config", str(config), "--role", "delivery") for _ in range(2)
    ]
    for worker in workers:
        worker.wait_for("service_started")
    engine = start_service("run", "--config", str(config), "--role", "engine")
    engine.wait_for("replay_finished")
    journal = PostgresJournal(url)
    journal.open()
    try:
        await eventually(lambda: journal.alert_count() == 3, what="the replay's 3 alerts")
        await eventually(lambda: len(http_receiver.requests) == 3, what="3 webhooks")
        await eventually(lambda: journal.pending_count() == 0, what="every delivery marked")
        for process in (engine, *workers):
            assert process.stop(signal.SIGTERM) == 0
        # Every process is stopped: what was sent is all that ever will be.
        received = sorted(request.json()["id"] for request in http_receiver.requests)
        assert received == sorted(a["id"] for a in journal.recent_alerts())
        assert [(row.status, row.attempts) for row in journal.deliveries()] == [("sent", 1)] * 3
    finally:
        journal.close()


async def test_a_delivery_process_keeps_the_mqtt_out_link_it_sends_through(
    tmp_path: Path,
    postgres_server: PostgresServer,
    mosquitto: Mosquitto,
    start_service: StartService,
) -> None:
    url = postgres_server.new_database()
    extra = f'[mqtt_out]\nurl = "{mosquitto.url}"\n\n'
    config = cluster_config(tmp_path, url, "http://127.0.0.1:9/hook", extra=extra)
    published: list[str] = []
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="ops-listener") as ops:
        await ops.subscribe("alerts/#", qos=1)

        async def listen() -> None:
            async for message in ops.messages:
                assert isinstance(message.payload, bytes)
                published.append(json.loads(message.payload)["id"])

        listening = asyncio.create_task(listen())
        worker = start_service("run", "--config", str(config), "--role", "delivery")
        worker.wait_for("mqtt_out_connected", timeout=20)
        engine = start_service("run", "--config", str(config), "--role", "engine")
        engine.wait_for("replay_finished")
        journal = PostgresJournal(url)
        journal.open()
        try:
            await eventually(lambda: len(published) == 3, what="the replay's 3 alerts on MQTT")

            def mqtt_rows() -> list[DeliveryRecord]:
                return [row for row in journal.deliveries() if row.channel == "mqtt"]

            # A row is marked once the broker acknowledged its message: just after.
            await eventually(
                lambda: {row.status for row in mqtt_rows()} == {"sent"}, what="marked sent"
            )
            assert sorted(published) == sorted(row.alert_id for row in mqtt_rows())
            assert {(row.status, row.attempts) for row in mqtt_rows()} == {("sent", 1)}
        finally:
            listening.cancel()
            journal.close()
    for process in (engine, worker):
        assert process.stop(signal.SIGTERM) == 0


def test_a_role_needs_a_postgresql_journal(tmp_path: Path, start_service: StartService) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(f'[service]\njournal = "{tmp_path / "alerts.db"}"\n')
    process = start_service("run", "--config", str(config), "--role", "delivery")
    assert process.process.wait(timeout=30) != 0
    process.close()
    said = "".join(process.stray_lines) + str(process.events)
    assert "--role delivery: the processes of a cluster share a PostgreSQL journal" in said


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 (loopback)
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def http_post(port: int, path: str, body: object, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 (loopback)
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def role_line(metrics: str) -> str:
    (line,) = [line for line in metrics.splitlines() if line.startswith("strykr_role{")]
    return line


def test_each_role_reports_its_state_in_readyz_and_metrics(
    tmp_path: Path, postgres_server: PostgresServer, start_service: StartService
) -> None:
    url = postgres_server.new_database()
    config = cluster_config(tmp_path, url, "http://127.0.0.1:9/hook")
    ports = {name: free_port() for name in ("engine", "standby", "delivery", "gateway", "api")}

    def run(name: str, role: str) -> ServiceProcess:
        return start_service(
            "run", "--config", str(config), "--role", role, "--http-port", str(ports[name])
        )

    engine = run("engine", "engine")
    engine.wait_for("replay_finished", timeout=20)
    standby = run("standby", "engine")
    standby.wait_for("engine_shard_standby", timeout=20)
    others = [run(name, name) for name in ("delivery", "gateway", "api")]
    for process in others:
        process.wait_for("service_started", timeout=20)
    wait_until(lambda: http_get(ports["gateway"], "/readyz")[0] == 200, what="gateway ready")
    for name in ("engine", "delivery", "gateway", "api"):
        status, body = http_get(ports[name], "/readyz")
        assert (name, status, json.loads(body)) == (name, 200, {"status": "ready"})
    status, body = http_get(ports["standby"], "/readyz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["engine shard 0/1: standby; another process runs it"]
    states = {name: role_line(http_get(port, "/metrics")[1]) for name, port in ports.items()}
    assert states == {
        "engine": 'strykr_role{role="engine",shard="",state="active"} 1.0',
        "standby": 'strykr_role{role="engine",shard="",state="standby"} 1.0',
        "delivery": 'strykr_role{role="delivery",shard="",state="running"} 1.0',
        "gateway": 'strykr_role{role="gateway",shard="",state="running"} 1.0',
        "api": 'strykr_role{role="api",shard="",state="running"} 1.0',
    }
    # Only the API role serves the API; the others, their health and metrics.
    assert http_get(ports["api"], "/api/v1/levels")[0] == 200
    for name in ("engine", "delivery", "gateway"):
        assert http_get(ports[name], "/api/v1/levels")[0] == 404
    # The engine goes: its standby takes over, and says so.
    assert engine.stop(signal.SIGKILL) == -signal.SIGKILL
    standby.wait_for("engine_shard_active", timeout=10)
    wait_until(lambda: http_get(ports["standby"], "/readyz")[0] == 200, what="standby ready")
    assert 'state="active"' in role_line(http_get(ports["standby"], "/metrics")[1])
    for process in (standby, *others):
        assert process.stop(signal.SIGTERM) == 0


async def test_a_rule_set_through_the_api_role_fires_in_the_engine_and_reaches_a_gateway(
    tmp_path: Path,
    postgres_server: PostgresServer,
    mosquitto: Mosquitto,
    start_service: StartService,
) -> None:
    url = postgres_server.new_database()
    config = tmp_path / "alerts.toml"
    config.write_text(
        f"""
[service]
log_format = "json"
journal = "{url}"
stats_seconds = 0

[websocket]
port = 0

[http]
port = 0
admin_tokens = ["{ADMIN_TOKEN}"]

[engine]
stale_seconds = 0

[[sources]]
kind = "mqtt"
name = "feed"
url = "{mosquitto.url}"
topic = "ticks/#"
qos = 1
client_id = "strykr-roles"

[[rules]]
id = "iwm-below-255"
symbol = "IWM"
level = 255.0
direction = "below"
"""
    )
    api_port, ws_port = free_port(), free_port()

    def run(role: str, *args: str) -> ServiceProcess:
        return start_service("run", "--config", str(config), "--role", role, *args)

    engine = run("engine")
    engine.wait_for("mqtt_connected", timeout=20)
    api = run("api", "--http-port", str(api_port))
    gateway = run("gateway", "--ws-port", str(ws_port))
    for process in (api, gateway):
        process.wait_for("service_started", timeout=20)
    async with websockets.connect(f"ws://127.0.0.1:{ws_port}") as dashboard:
        await dashboard.send(json.dumps({"op": "subscribe", "symbols": ["IWM"], "ticks": True}))
        subscribed = json.loads(await dashboard.recv())
        assert subscribed["type"] == "subscribed"
        status, body = http_post(
            api_port,
            "/api/v1/rules",
            {"symbol": "IWM", "condition": "cross_below", "level": 250.0},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert status == 201, body
        rule_id = json.loads(body)["id"]

        def engine_has_it() -> bool:
            return any(
                rule_id in cast(list[str], e.get("added", []))
                for e in engine.events
                if e.get("event") == "rules_changed"
            )

        await eventually(engine_has_it, within=10, what="the engine watching the API's rule")
        for ticked in (tick(256.0, 0), tick(251.0, 1), tick(249.0, 2)):
            mosquitto.publish(f"ticks/{ticked.symbol}", payload(ticked))
        rules = []
        prices: list[float] = []
        async with asyncio.timeout(10):
            # The alerts through the journal; the prices from the engine, through the broker.
            while rule_id not in rules or 249.0 not in prices:
                frame = json.loads(await dashboard.recv())
                if frame["type"] == "alert":
                    rules.append(frame["data"]["rule"])
                elif frame["type"] == "tick":
                    prices.append(frame["data"]["price"])
        assert sorted(rules) == sorted(["iwm-below-255", rule_id])
        assert set(prices) <= {256.0, 251.0, 249.0}
    status, body = http_get(api_port, "/api/v1/alerts?symbol=IWM")
    assert status == 200
    assert sorted(a["rule"] for a in json.loads(body)["alerts"]) == sorted(rules)

    # The chart of the API process: the engine's ticks, as bars, through the broker.
    def closes() -> list[float]:
        answer = json.loads(http_get(api_port, "/api/v1/history?symbol=IWM&interval=1s")[1])
        return [bar["close"] for bar in answer["bars"]]

    await eventually(lambda: closes() == [256.0, 251.0, 249.0], what="the API's 1 s bars")
    for process in (engine, api, gateway):
        assert process.stop(signal.SIGTERM) == 0


def test_a_shard_is_an_engines_alone(tmp_path: Path, start_service: StartService) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text('[service]\njournal = "postgresql://strykr@127.0.0.1:1/strykr"\n')
    process = start_service("run", "--config", str(config), "--role", "gateway", "--shard", "0/2")
    assert process.process.wait(timeout=30) != 0
    process.close()
    said = "".join(process.stray_lines) + str(process.events)
    assert "--role gateway: [cluster] shards (or --shard) divides the engines' symbols" in said
