"""The composition root in-process: sources → queue → engine → sinks, and an orderly stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from service.app import build
from service.config import Config, ServiceConfig
from service.errors import TaskFailedError
from service.models import AlertEvent, Tick
from service.rules.settings import EngineConfig
from service.running import Service
from service.streams.queue import TickSink
from service.streams.settings import ReplaySourceConfig, SimulatorSourceConfig
from service.streams.source import SourceSnapshot
from tests.builders import level_rule, tick
from tests.helpers import eventually, running


def config(*sources: ReplaySourceConfig, queue_size: int = 10_000) -> Config:
    return Config(
        engine=EngineConfig(queue_size=queue_size),
        sources=sources,
        rules=(
            level_rule(255.0, rule_id="below"),
            level_rule(265.0, "above", rule_id="above"),
            level_rule(500.0, symbol="SPY", rule_id="spy-below"),
        ),
    )


async def run_until(app: Service, condition: Callable[[], bool]) -> None:
    """Run ``app`` until ``condition()`` holds (checked as alerts and ticks go by), then stop it."""
    async with running(app):
        await eventually(condition)


async def test_app_runs_every_source_through_one_engine(data_dir: Path, tmp_path: Path) -> None:
    second = tmp_path / "spy.csv"
    second.write_text("ts,symbol,price\n1770042600,SPY,510\n1770042700,SPY,499\n")
    alerts: list[AlertEvent] = []
    app = build(
        config(
            ReplaySourceConfig(name="day", path=data_dir / "iwm_day.csv", speed=0),
            ReplaySourceConfig(name="more", path=second, speed=0),
        ),
        sinks=[alerts.append],
    )
    await run_until(app, lambda: app.processor.ticks + app.rejections.total >= 13)
    assert (app.processor.ticks, app.rejections.total) == (9, 4)
    assert sorted(a.rule for a in alerts) == ["above", "below", "below", "spy-below"]


async def test_app_when_a_source_fails_the_others_go_on(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"")
    alerts: list[AlertEvent] = []
    app = build(
        config(
            ReplaySourceConfig(name="broken", path=broken, speed=0),
            ReplaySourceConfig(name="day", path=data_dir / "iwm_day.csv", speed=0),
        ),
        sinks=[alerts.append],
    )
    with structlog.testing.capture_logs() as logs:
        await run_until(app, lambda: len(alerts) == 3)
    failures = [e for e in logs if e["event"] == "source_failed"]
    assert [e["source"] for e in failures] == ["broken"]
    assert "the file is empty" in failures[0]["error"]


class BurstSource:
    """Queues ticks faster than the engine can run, then asks the service to stop."""

    name = "burst"
    description = "a burst of ticks"

    def __init__(self, ticks: list[Tick], stop: asyncio.Event) -> None:
        self.ticks = ticks
        self.stop = stop
        self.accepted = 0

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(name=self.name, state="running", accepted=self.accepted)

    async def run(self, queue: TickSink) -> None:
        for t in self.ticks:
            await queue.put(t)  # a put into a queue with room never yields
            self.accepted += 1
        self.stop.set()
        await asyncio.Event().wait()  # a live source runs until cancelled


async def test_app_on_stop_lets_the_engine_finish_what_was_queued() -> None:
    alerts: list[AlertEvent] = []
    app = build(config(queue_size=5_000), sinks=[alerts.append])
    stop = asyncio.Event()
    burst = [tick(260.0 - (i % 2) * 10, i) for i in range(2_000)]
    app.sources[:] = [BurstSource(burst, stop)]
    await asyncio.wait_for(app.run(stop), 5)
    assert app.queue.qsize() == 0
    assert app.processor.ticks == 2_000
    assert len(alerts) == 1_000  # every second tick breaks 255 after one that re-arms


async def test_app_with_a_simulator_alerts_and_logs_its_stats() -> None:
    simulator = SimulatorSourceConfig(
        name="demo", prices=(("IWM", 255.2),), rate=400.0, volatility=0.002, seed=4
    )
    alerts: list[AlertEvent] = []
    app = build(
        Config(
            service=ServiceConfig(stats_seconds=0.1),
            sources=(simulator,),
            rules=(level_rule(255.0, rule_id="below", hysteresis=0.1),),
        ),
        sinks=[alerts.append],
    )
    with structlog.testing.capture_logs() as logs:
        await run_until(app, lambda: len(alerts) >= 2 and app.processor.ticks >= 100)
    assert {alert.rule for alert in alerts} == {"below"}
    stats = [e for e in logs if e["event"] == "pipeline_stats"]
    assert stats, "a pipeline_stats line every 0.1 s"
    last = stats[-1]
    assert last["sources"]["demo"]["ticks"] > 0
    assert last["queue_size"] == 10_000
    assert last["lag_max_s"] >= 0
    [stopped] = [e for e in logs if e["event"] == "service_stopped"]
    assert stopped["ticks"] == app.processor.ticks
    assert stopped["sources"]["demo"]["ticks"] == app.processor.ticks


async def test_app_when_an_alert_sink_breaks_the_engine_and_other_sinks_go_on(
    data_dir: Path,
) -> None:
    alerts: list[AlertEvent] = []

    def broken(_alert: AlertEvent) -> None:
        raise RuntimeError("the sink is down")

    app = build(
        config(ReplaySourceConfig(name="day", path=data_dir / "iwm_day.csv", speed=0)),
        sinks=[broken, alerts.append],
    )
    with structlog.testing.capture_logs() as logs:
        await run_until(app, lambda: len(alerts) == 3)
    failures = [e for e in logs if e["event"] == "alert_sink_failed"]
    assert len(failures) == 3
    assert failures[0]["sink"].endswith("broken")


async def test_app_when_the_engine_fails_stops_with_a_clear_error(data_dir: Path) -> None:
    app = build(config(ReplaySourceConfig(name="day", path=data_dir / "iwm_day.csv", speed=0)))

    def broken(_batch: object) -> list[AlertEvent]:
        raise ZeroDivisionError("division by zero")

    app.processor.process_batch = broken  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs, pytest.raises(TaskFailedError) as failed:
        await asyncio.wait_for(app.run(asyncio.Event()), 10)
    assert failed.value.task == "engine"
    [line] = [line for line in logs if line["event"] == "task_failed"]
    assert (line["task"], line["action"]) == ("engine", "stopping the service")
    assert [line["event"] for line in logs][-1] == "service_stopped"
