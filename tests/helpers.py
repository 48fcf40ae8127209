"""Helpers for tests that run the service in their event loop (builders: tests.builders)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from service.config import load_config
from service.models import AlertEvent, Tick
from service.processing.engine_task import TickProcessor
from service.running import Service
from service.streams.mqtt import MqttSource
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from tests.waiting import eventually  # noqa: F401 - re-exported for the integration tests


@contextlib.asynccontextmanager
async def running(app: Service, *, stop_within: float = 5.0) -> AsyncIterator[Service]:
    """Run ``app`` for the ``async with`` block, then stop it, failing if that takes too long."""
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_within)


async def take(
    queue: TickQueue, count: int, settle: Callable[[list[int]], None] | None = None
) -> list[Tick]:
    """Take ``count`` ticks from ``queue`` as the engine would, in batches.

    ``settle`` is given each batch's receipts, as the journal's commit gives them to a source.
    """
    taken: list[Tick] = []
    while len(taken) < count:
        batch = await queue.get_batch(100)
        queue.task_done(batch.taken)
        taken += batch.ticks
        if settle is not None:
            settle([receipt for _, receipt in batch.receipts])
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


def mqtt_source(app: Service) -> MqttSource:
    """The one source of ``app``, an MQTT source."""
    [source] = app.sources
    assert isinstance(source, MqttSource)
    return source


def uninterrupted(path: Path, ticks: list[Tick]) -> list[AlertEvent]:
    """The alerts of one replay of ``ticks`` with the rules of the config at ``path``, nothing
    in between: what a run with crashes and restarts must give."""
    settings = load_config(path)
    processor = TickProcessor.for_settings(settings.engine, settings.rules, Rejections())
    return processor.process(ticks)
