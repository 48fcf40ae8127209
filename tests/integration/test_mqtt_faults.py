"""The service fed over MQTT in the faults of a deployment, against a real Mosquitto.

Each test starts its own broker on a free port and the service as a process
(``strykr-alerts run``), then does what a crash, an operator or a broken feed
would: restarts in a burst, ticks from the future, two prices for one instant,
absurd prices. What comes out is compared with an uninterrupted run of the
good ticks alone.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from service.app import build
from service.config import Config, ServiceConfig
from service.streams.mqtt import silent_after
from service.streams.settings import MqttSourceConfig
from service.timestamps import NS_PER_SECOND, format_timestamp
from tests.blackhole import BlackholeProxy
from tests.conftest import ServiceProcess, StartService
from tests.feeds import RULES, RULES_TOML, alerts_of_uninterrupted_run, payload, walk
from tests.helpers import eventually, running, service_config
from tests.mosquitto import Mosquitto

BURST = 5_000


@pytest.fixture
def wide_open_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that keeps no in-flight window: everything queued is sent at once on reconnect."""
    broker = Mosquitto(tmp_path / "mosquitto", max_inflight_messages=0)
    broker.start()
    yield broker
    broker.stop()


def mqtt_source_toml(broker: Mosquitto, **settings: object) -> str:
    lines = [
        "[[sources]]",
        'kind = "mqtt"',
        'name = "broker"',
        f'url = "{broker.url}"',
        "qos = 1",
        "reconnect_initial_seconds = 0.1",
        "reconnect_max_seconds = 1",
        *(f"{key} = {json.dumps(value)}" for key, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def get(service: ServiceProcess, path: str) -> tuple[int, bytes]:
    """(status, body) of ``GET path`` on the service's HTTP server."""
    [listening] = service.wait_for("http_listening")
    url = f"{listening['url']}{path.lstrip('/')}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def readiness(service: ServiceProcess) -> tuple[int, dict[str, object]]:
    """(status, body) of the service's ``GET /readyz``."""
    status, body = get(service, "/readyz")
    return status, json.loads(body)


def metric(service: ServiceProcess, name: str, **labels: str) -> float:
    """The sample ``name`` with ``labels``, as ``/metrics`` says it now (0 when absent)."""
    _, body = get(service, "/metrics")
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def ticks_accepted(service: ServiceProcess, source: str = "broker") -> float:
    return metric(service, "strykr_ticks_total", source=source)


def wait_for_ticks(service: ServiceProcess, count: int, *, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while (seen := ticks_accepted(service)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{seen:.0f} of {count} ticks accepted within {within} s")
        time.sleep(0.05)


def fired(service: ServiceProcess) -> list[object]:
    return [e["alert_id"] for e in service.events if e.get("event") == "alert_fired"]


@pytest.mark.parametrize("away", ["frozen_then_killed", "stopped_for_a_deploy"])
def test_restart_with_thousands_of_qos1_ticks_pending_catches_up_with_every_alert(
    wide_open_broker: Mosquitto, start_service: StartService, tmp_path: Path, away: str
) -> None:
    ticks = walk(BURST, seed=3)
    expected = alerts_of_uninterrupted_run(ticks)
    assert len(expected) >= 10, "the walk must break the levels many times"
    config = service_config(tmp_path, mqtt_source_toml(wide_open_broker) + RULES_TOML)
    first = start_service("run", "--config", str(config))
    first.wait_for("mqtt_connected")
    lines = [payload(t) for t in ticks]
    if away == "frozen_then_killed":
        # Frozen, it reads nothing: the burst goes out to its socket unacknowledged
        # (in flight) and waits at the broker; then it dies without a word.
        first.process.send_signal(signal.SIGSTOP)
        wide_open_broker.publish_lines("ticks/IWM", lines)
        first.close()
    else:
        assert first.stop(signal.SIGTERM) == 0
        wide_open_broker.publish_lines("ticks/IWM", lines)  # while the new version starts
    second = start_service("run", "--config", str(config))
    # On reconnect the broker sends the whole burst before the SUBACK.
    second.wait_for("mqtt_connected", timeout=20)
    wait_for_ticks(second, BURST)
    status, body = readiness(second)
    assert (status, body) == (200, {"status": "ready"})
    assert second.stop(signal.SIGTERM) == 0
    [stopped] = [e for e in second.events if e["event"] == "service_stopped"]
    assert stopped["ticks"] == BURST
    assert fired(second) == expected
    assert not [e for e in second.events if e["event"] in ("mqtt_unreachable", "mqtt_retry")]


def test_future_same_time_and_absurd_ticks_change_no_alert_of_the_good_ticks(
    mosquitto: Mosquitto, start_service: StartService, tmp_path: Path
) -> None:
    good = walk(400, seed=5)
    expected = alerts_of_uninterrupted_run(good)
    assert len(expected) >= 3
    year_ahead = format_timestamp(time.time_ns() + 365 * 86_400 * NS_PER_SECOND)
    lines: list[str] = []
    bad = Counter[str]()
    for index, t in enumerate(good):
        lines.append(payload(t))
        at = format_timestamp(t.ts_ns)
        if index == 20:
            # A year ahead: taken, it would make every later tick "older" and silence IWM.
            lines.append(json.dumps({"symbol": "IWM", "price": 250.0, "ts": year_ahead}))
            bad["future_ts"] += 1
        elif index % 15 == 3:
            # Another price for the same instant, beyond the level: a false break if taken.
            lines.append(
                json.dumps({"symbol": "IWM", "price": 254.0 if t.price > 255 else 266.0, "ts": at})
            )
            bad["same_time"] += 1
        elif index % 15 == 9:
            lines.append(
                json.dumps({"symbol": "IWM", "price": 1.0, "ts": t.ts_ns // 1_000_000 + 1})
            )
            bad["price_implausible"] += 1
        elif index == 100:
            lines.append(json.dumps({"symbol": "IWM", "price": 1e308, "ts": at}))
            bad["price_out_of_range"] += 1
    config = service_config(tmp_path, mqtt_source_toml(mosquitto) + RULES_TOML)
    service = start_service("run", "--config", str(config))
    service.wait_for("mqtt_connected")
    mosquitto.publish_lines("ticks/IWM", lines)
    wait_for_ticks(service, len(good))
    for reason, count in bad.items():
        assert metric(service, "strykr_ticks_rejected_total", reason=reason) == count, reason
    assert ticks_accepted(service) == len(good)  # the rejected ones are not counted as ticks
    assert service.stop(signal.SIGTERM) == 0
    assert fired(service) == expected
    headlines = [e["headline"] for e in service.events if e.get("event") == "alert_fired"]
    assert all(len(str(headline)) < 60 for headline in headlines)


def takeovers(broker: Mosquitto, client_id: str) -> int:
    """How often the broker closed a connection because another took its client id."""
    return broker.log_tail(None).count(f"Client {client_id} already connected")


def test_two_instances_with_one_client_id_report_the_conflict_and_stop_fighting(
    mosquitto: Mosquitto, start_service: StartService, tmp_path: Path
) -> None:
    client_id = "strykr-alerts-shared"
    source = mqtt_source_toml(mosquitto, client_id=client_id, conflict_backoff_seconds=5)
    services = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        config = service_config(directory, source + RULES_TOML)
        services.append(start_service("run", "--config", str(config)))
    deadline = time.monotonic() + 10
    while not any(e["event"] == "mqtt_client_id_conflict" for s in services for e in s.events):
        assert time.monotonic() < deadline, "no conflict reported within 10 s"
        time.sleep(0.05)
    reported = [
        s for s in services if any(e["event"] == "mqtt_client_id_conflict" for e in s.events)
    ]
    [error] = [e for e in reported[0].events if e["event"] == "mqtt_client_id_conflict"]
    assert error["level"] == "error"
    assert error["client_id"] == client_id
    assert "give every instance its own [[sources]] client_id" in str(error["hint"])
    status, body = readiness(reported[0])
    assert status == 503
    assert "client id conflict" in str(body["error"])
    assert f"another client connects as {client_id!r}" in str(body["error"])
    # From here on the one that reported it retries every 5 to 7.5 s, each retry taking
    # the id over at most twice (it, then the other back): four more takeovers need a
    # whole backoff, where two clients each reconnecting at once take it hundreds of times.
    before = takeovers(mosquitto, client_id)
    started = time.monotonic()
    while takeovers(mosquitto, client_id) < before + 4:
        assert time.monotonic() - started < 30, "the instances stopped retrying altogether"
        time.sleep(0.05)
    assert time.monotonic() - started >= 5.0
    for service in services:
        assert service.stop(signal.SIGTERM) == 0
        assert sum(e["event"] == "mqtt_client_id_conflict" for e in service.events) <= 1


async def test_a_black_holed_broker_link_is_reported_silent_then_given_up_and_rejoined(
    mosquitto: Mosquitto,
) -> None:
    keepalive = 3
    proxy = BlackholeProxy(mosquitto.host, mosquitto.port)
    await proxy.start()
    source = MqttSourceConfig(
        name="broker",
        host="127.0.0.1",
        port=proxy.port,
        client_id="strykr-blackhole",
        keepalive_seconds=keepalive,
        reconnect_initial_seconds=0.1,
        reconnect_max_seconds=0.5,
    )
    config = Config(service=ServiceConfig(stats_seconds=0), sources=(source,), rules=RULES)
    app = build(config, sinks=[])
    try:
        with structlog.testing.capture_logs() as logs:
            async with running(app):
                await eventually(lambda: app.readiness() == [], what="ready")
                proxy.swallow()
                swallowed = time.monotonic()
                # Documented bounds: silent past keepalive + 2 s, given up by 2 x keepalive + 1 s.
                await eventually(
                    lambda: any("link silent" in reason for reason in app.readiness()),
                    within=silent_after(keepalive) + 1,
                    what="readiness reports the silent link",
                )
                await eventually(
                    lambda: any(e["event"] == "mqtt_disconnected" for e in logs),
                    within=2 * keepalive + 1 + 2 - (time.monotonic() - swallowed),
                    what="the dead link given up",
                )
                await eventually(lambda: app.readiness() == [], within=10, what="rejoined")
    finally:
        await proxy.stop()
    assert proxy.connections == 2
    [disconnected] = [e for e in logs if e["event"] == "mqtt_disconnected"]
    assert disconnected["source"] == "broker"
