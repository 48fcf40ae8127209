"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from service.app import App
from service.models import AlertEvent, Direction, LevelRule, Tick, alert_id
from service.streams.queue import TickQueue
from service.timestamps import NS_PER_SECOND, parse_timestamp

# 2026-02-02 14:30:00 UTC, the open of the sample day.
T0_NS = parse_timestamp("2026-02-02T14:30:00Z")


def at(seconds: float) -> int:
    """The instant ``seconds`` after T0, in nanoseconds."""
    return T0_NS + round(seconds * NS_PER_SECOND)


def tick(
    price: float, seconds: float = 0.0, symbol: str = "IWM", volume: float | None = None
) -> Tick:
    return Tick(symbol=symbol, price=price, ts_ns=at(seconds), volume=volume)


def alert_at(seconds: float, symbol: str = "IWM", *, price: float = 254.0) -> AlertEvent:
    """A break of 255 below, at T0 + ``seconds``, with its deterministic id."""
    key = {
        "rule": f"{symbol.lower()}-below-255",
        "kind": "break_below",
        "level": 255.0,
        "symbol": symbol,
        "ts_ns": at(seconds),
        "price": price,
    }
    return AlertEvent(id=alert_id(**key), **key)  # type: ignore[arg-type]


def level_rule(
    level: float = 255.0,
    direction: Direction = "below",
    *,
    rule_id: str = "r",
    symbol: str = "IWM",
    **settings: Any,
) -> LevelRule:
    return LevelRule(id=rule_id, symbol=symbol, level=level, direction=direction, **settings)


async def eventually(
    condition: Callable[[], bool], *, within: float = 10.0, what: str = ""
) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what or condition}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(app: App, *, stop_within: float = 5.0) -> AsyncIterator[App]:
    """Run ``app`` for the ``async with`` block, then stop it, failing if that takes too long."""
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_within)


async def take(queue: TickQueue, count: int) -> list[Tick]:
    """Take ``count`` ticks from ``queue`` as the engine would, in batches."""
    taken: list[Tick] = []
    while len(taken) < count:
        batch = await queue.get_batch(100)
        queue.task_done(len(batch.ticks))
        taken += batch.ticks
    return taken


def service_config(directory: Path, body: str) -> Path:
    """Write a config with JSON logs (for :class:`ServiceProcess`) and ``body``; return its path.

    The journal goes to ``directory``; the websocket hub and the HTTP server,
    unless ``body`` configures them, listen on free ports.
    """
    path = directory / "alerts.toml"
    hub = "" if "[websocket]" in body else "[websocket]\nport = 0\n\n"
    http = "" if "[http]" in body else "[http]\nport = 0\n\n"
    path.write_text('[service]\nlog_format = "json"\n\n' + hub + http + body)
    return path
