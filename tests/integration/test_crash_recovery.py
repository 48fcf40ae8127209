"""Crash-exact recovery: killed anywhere and started again, the journal holds what one run gives.

A real strykr-alerts process reads a deterministic QoS 1 stream from a real
Mosquitto (persistent session) while a publisher keeps publishing at a steady
rate. At 20 seeded points the process is killed (SIGKILL: no goodbye at all;
or SIGTERM: the routine stop of a deploy) and started again at once. The
rules have everything the engine keeps between ticks: confirmation by ticks
and by time, hysteresis, cooldowns, bar-close rules with bars half built, a
range, levels that are indicators of bars (SMA, EMA) and of windows of ticks
(VWAP, the rolling high), an RSI threshold, a move within a window, and the
frequencies once and once per bar. At the end the journal must hold exactly the alert ids, in order,
of one uninterrupted replay of the same ticks; and after each restart, what
it holds must be a beginning of them (nothing extra at any point).
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.models import Tick
from service.timestamps import format_timestamp
from tests.builders import tick
from tests.conftest import ServiceProcess, StartService
from tests.feeds import wandering
from tests.helpers import service_config, uninterrupted
from tests.mosquitto import Mosquitto
from tests.publisher import Publisher
from tests.waiting import wait_until

TICKS = 4_800  # two symbols, one tick a second each in tick time
PER_SECOND = 160.0  # published in real time: 30 s, across the 20 restarts
KILLS = 20
END = "END"  # the last two ticks cross a rule of their own: the end of the stream

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
cooldown_seconds = 120

[[rules]]
id = "iwm-bar-below-259"
symbol = "IWM"
level = 259.0
direction = "below"
trigger = "bar_close"
bar = "30s"
confirm_ticks = 2
hysteresis = 0.3

[[rules]]
id = "spy-range"
type = "range"
symbol = "SPY"
low = 495.0
high = 505.0
hysteresis = 0.5
cooldown_seconds = 120

[[rules]]
id = "spy-bar-above-502"
symbol = "SPY"
level = 502.0
direction = "above"
trigger = "bar_close"
bar = "1m"

[[rules]]
id = "iwm-above-vwap"
symbol = "IWM"
condition = "cross_above"
level = 'vwap("2m")'
hysteresis = 0.3
cooldown_seconds = 180

[[rules]]
id = "iwm-crossing-sma"
symbol = "IWM"
condition = "crossing"
level = 'sma(5, "1m")'
hysteresis = 0.4
frequency = "once_per_bar"
bar = "5m"

[[rules]]
id = "spy-down-4pct"
symbol = "SPY"
condition = "moving_down"
window = "5m"
percent = 4.0

[[rules]]
id = "spy-rsi-above-70"
symbol = "SPY"
condition = "greater_than"
source = 'rsi(6, "1m")'
level = 70.0
frequency = "every_time"
cooldown_seconds = 300

[[rules]]
id = "spy-breakout-once"
symbol = "SPY"
condition = "cross_above"
level = 'high("10m")'
frequency = "once"

[[rules]]
id = "iwm-ema-close"
symbol = "IWM"
condition = "cross_below"
level = 'ema(4, "1m")'
frequency = "once_per_bar_close"
bar = "1m"
hysteresis = 0.2

[[rules]]
id = "end"
symbol = "END"
level = 97.0
direction = "below"
"""


def stream() -> list[Tick]:
    """IWM and SPY, in turn, pulled back to 260 and 500 while they wander across the levels."""
    last = TICKS // 2
    ticks = wandering({"IWM": 260.0, "SPY": 500.0}, TICKS, seed=15)
    return [*ticks, tick(100.0, last, symbol=END), tick(95.0, last + 1, symbol=END)]


RULE_IDS = [line.split('"')[1] for line in RULES.splitlines() if line.startswith("id = ")]


def config(tmp_path: Path, broker: Mosquitto) -> Path:
    return service_config(
        tmp_path,
        f"""
[engine]
stale_seconds = 0

[[sources]]
kind = "mqtt"
name = "feed"
url = "{broker.url}"
topic = "ticks/#"
qos = 1
client_id = "strykr-crash-test"
{RULES}
""",
    )


def journaled(path: Path) -> list[str]:
    """The alert ids in the journal, in the order they were stored (read-only, WAL)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return [row[0] for row in db.execute("SELECT id FROM alerts ORDER BY seq")]
        except sqlite3.OperationalError:  # not created yet
            return []


@contextlib.contextmanager
def publishing(broker: Mosquitto, ticks: list[Tick]) -> Iterator[Publisher]:
    publisher = Publisher(broker, ticks, PER_SECOND)
    try:
        yield publisher
    finally:
        publisher.close()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_at_20_points_the_journal_holds_exactly_the_alerts_of_one_run(
    tmp_path: Path, mosquitto: Mosquitto, start_service: StartService, sig: int
) -> None:
    path = config(tmp_path, mosquitto)
    journal = tmp_path / "var" / "alerts.db"
    ticks = stream()
    alerts = uninterrupted(path, ticks)
    assert len(alerts) >= 40, f"the stream must break the levels often, got {len(alerts)}"
    assert {alert.rule for alert in alerts} == set(RULE_IDS), "every rule fires"
    expected = [alert.id for alert in alerts]
    points = sorted(random.Random(sig).sample(range(200, TICKS - 200), KILLS))

    def start() -> ServiceProcess:
        service = start_service("run", "--config", str(path))
        service.wait_for("mqtt_connected", timeout=15)
        return service

    service = start()
    with publishing(mosquitto, ticks) as publisher:
        for point in points:
            wait_until(
                lambda point=point: publisher.sent >= point,
                within=60,
                what=f"tick {point} published",
            )
            status = service.stop(sig)
            assert status == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
            so_far = journaled(journal)
            assert so_far == expected[: len(so_far)], f"killed at {point}: alerts not as one run"
            service = start()
        publisher.wait(timeout=60)
        wait_until(
            lambda: expected[-1] in journaled(journal), within=30, what="the end of the stream"
        )
    assert service.stop() == 0
    assert journaled(journal) == expected


@pytest.mark.slow
def test_a_replay_killed_three_times_goes_on_from_its_last_commit_and_alerts_as_one_run(
    tmp_path: Path, start_service: StartService
) -> None:
    ticks = stream()
    lines = ["ts,symbol,price,volume"] + [
        f"{format_timestamp(t.ts_ns)},{t.symbol},{t.price},{t.volume or ''}" for t in ticks
    ]
    (tmp_path / "ticks.csv").write_text("\n".join(lines) + "\n")
    path = service_config(
        tmp_path,
        f"""
[engine]
stale_seconds = 0

[[sources]]
kind = "replay"
name = "file"
path = "ticks.csv"
speed = 600
{RULES}
""",
    )
    journal = tmp_path / "var" / "alerts.db"
    expected = [alert.id for alert in uninterrupted(path, ticks)]
    rng = random.Random(3)
    for _ in range(3):
        service = start_service("run", "--config", str(path))
        service.wait_for("replay_started", timeout=15)
        time.sleep(rng.uniform(0.3, 2.5))  # a seeded moment of the replay (4 s in all)
        assert service.stop(signal.SIGKILL) == -signal.SIGKILL
        so_far = journaled(journal)
        assert so_far == expected[: len(so_far)]
    service = start_service("run", "--config", str(path))
    [resumed] = service.wait_for("replay_resumed", timeout=15)
    assert 0 < int(str(resumed["after_row"])) < len(ticks)
    service.wait_for("replay_finished", timeout=30)
    assert service.stop() == 0
    assert journaled(journal) == expected
