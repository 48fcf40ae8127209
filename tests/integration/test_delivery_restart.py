"""The whole service, restarted in the middle of a replay: every alert once on every channel.

A real strykr-alerts process delivers to a real SMTP server (aiosmtpd), an
HTTP receiver (webhook and apprise json:// push), a Mosquitto broker (MQTT
out) and a websocket dashboard client. It is stopped part-way through a
replay, started again, and goes on from the place in the file its last
commit stored, with the engine's state of that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServiceProcess, StartService, run_cli
from tests.helpers import eventually, service_config
from tests.mosquitto import Mosquitto
from tests.receivers import HttpReceiver, SmtpServer

DIPS = 16  # IWM dips below 255 this many times, 0.25 s apart in real time


def oscillating_ticks(path: Path) -> Path:
    lines = ["ts,symbol,price"]
    for index in range(2 * DIPS):
        seconds = index * 0.125
        lines.append(f"2026-02-02T14:30:{seconds:06.3f}Z,IWM,{254.0 if index % 2 else 256.0}")
    path.write_text("\n".join(lines) + "\n")
    return path


def config(tmp_path: Path, smtp: SmtpServer, http: HttpReceiver, broker: Mosquitto) -> Path:
    oscillating_ticks(tmp_path / "ticks.csv")
    return service_config(
        tmp_path,
        f"""
[[sources]]
kind = "replay"
path = "ticks.csv"
speed = 1

[[rules]]
id = "iwm-below-255"
symbol = "IWM"
level = 255
direction = "below"

[delivery]
retry_initial_seconds = 0.1
retry_max_seconds = 0.5

[email]
host = "127.0.0.1"
port = {smtp.port}
starttls = false
from = "alerts@strykr.test"

[mqtt_out]
url = "{broker.url}"

[[subscribers]]
id = "reader"
email = "reader@example.com"
push = ["json://127.0.0.1:{http.port}/push"]
webhook = "{http.url("/hook")}"
webhook_secret = "hook-secret"
symbols = ["IWM"]
""",
    )


@contextlib.asynccontextmanager
async def mqtt_alerts(broker: Mosquitto) -> AsyncIterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            received.append(json.loads(message.payload))

    async with aiomqtt.Client(broker.host, broker.port, identifier="collector") as client:
        await client.subscribe("alerts/#", qos=1)
        task = asyncio.create_task(collect(client))
        try:
            yield received
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


MARKER = {"marker": True}


async def publish_marker(broker: Mosquitto) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="marker") as client:
        await client.publish("alerts/marker", json.dumps(MARKER), qos=1)


async def hub_url(service: ServiceProcess) -> str:
    (listening,) = await asyncio.to_thread(service.wait_for, "ws_hub_listening")
    return str(listening["url"])


async def dashboard(url: str, since: str | None, seen: list[str]) -> None:
    """A dashboard: subscribe (with ``since``), record alert ids until the service closes it."""
    async with connect(url) as client:
        request: dict[str, Any] = {"op": "subscribe", "symbols": ["IWM"]}
        if since is not None:
            request["since"] = since
        await client.send(json.dumps(request))
        while True:
            try:
                text = await client.recv()
            except ConnectionClosed:  # the service stopped: every frame it sent came first
                return
            frame = json.loads(text)
            if frame["type"] == "alert":
                seen.append(frame["data"]["id"])


async def test_restart_mid_replay_delivers_each_alert_once_on_every_channel(
    tmp_path: Path,
    start_service: StartService,
    smtp_server: SmtpServer,
    http_receiver: HttpReceiver,
    mosquitto: Mosquitto,
) -> None:
    path = config(tmp_path, smtp_server, http_receiver, mosquitto)
    replayed = run_cli("replay", "--config", str(path), "--ticks", str(tmp_path / "ticks.csv"))
    expected = [json.loads(line)["id"] for line in replayed.stdout.splitlines()]
    assert len(expected) == DIPS

    async with mqtt_alerts(mosquitto) as published:
        seen: list[str] = []
        first = start_service("run", "--config", str(path))
        watcher = asyncio.create_task(dashboard(await hub_url(first), None, seen))
        await asyncio.to_thread(first.wait_for, "alert_fired", 4)
        assert await asyncio.to_thread(first.stop) == 0
        await asyncio.wait_for(watcher, 5)
        delivered_before = len(http_receiver.posts("/hook"))
        assert 0 < delivered_before < DIPS, "the first run must stop part-way"
        assert seen, "the dashboard saw alerts of the first run"

        second = start_service("run", "--config", str(path))
        watcher = asyncio.create_task(dashboard(await hub_url(second), seen[-1], seen))
        await asyncio.to_thread(second.wait_for, "replay_finished")

        await eventually(
            lambda: (
                min(
                    len(http_receiver.posts("/hook")),
                    len(http_receiver.posts("/push")),
                    len(smtp_server.receiver.mails),
                    len(published),
                    len(seen),
                )
                >= DIPS
            ),
            within=20,
            what="every alert on every channel",
        )
        # Stopped, it sends nothing more: whatever it sent twice is in by now. HTTP and
        # SMTP sends end with the receiver's answer; the hub's frames come before its
        # close; MQTT out's publishes were acknowledged by the broker, which hands them
        # on in order, so they are all in once a marker published after them is.
        assert await asyncio.to_thread(second.stop) == 0
        await asyncio.wait_for(watcher, 5)
        await publish_marker(mosquitto)
        await eventually(lambda: published[-1] == MARKER, what="the marker, after the alerts")
        published.pop()

    once = Counter(expected)
    assert Counter(request.json()["id"] for request in http_receiver.posts("/hook")) == once
    assert Counter(mail.message["X-Strykr-Alert-Id"] for mail in smtp_server.receiver.mails) == once
    assert Counter(alert["id"] for alert in published) == once
    assert Counter(seen) == once
    # A push names its alert by headline and time.
    times = {
        json.loads(line)["id"]: json.loads(line)["at"][11:19]
        for line in replayed.stdout.splitlines()
    }
    pushes = Counter(
        request.json()["message"].splitlines()[0] for request in http_receiver.posts("/push")
    )
    assert pushes == Counter(f"IWM broke below 255.00 at 254.00 ({times[i]} UTC)" for i in expected)
    # The second run goes on where the first one's last commit left the file: no row twice.
    [resumed] = second.wait_for("replay_resumed")
    assert 0 < int(str(resumed["after_row"])) < 2 * DIPS
    assert not [e for e in second.events if e["event"] == "alert_already_journaled"]
