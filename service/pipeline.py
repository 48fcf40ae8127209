"""The single consumer between the tick queue and the engine.

Sources only validate and enqueue; this is the one place that runs the engine,
so ticks are evaluated in arrival order, and replay and live share every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from service.config import Config
from service.errors import TickOutOfOrderError
from service.models import AlertEvent, Tick
from service.rules import RuleEngine
from service.streams.rejections import Rejections

# Ticks taken from the queue per engine call: large enough to amortise the
# call, small enough that alerts leave within a fraction of a millisecond.
BATCH_SIZE = 256

log = structlog.get_logger("service.pipeline")

AlertSink = Callable[[AlertEvent], None]


class TickProcessor:
    """Runs accepted ticks through the engine and hands each alert to the sinks."""

    def __init__(
        self, engine: RuleEngine, rejections: Rejections, sinks: Sequence[AlertSink] = ()
    ) -> None:
        self.engine = engine
        self.rejections = rejections
        self.sinks = list(sinks)
        self.ticks = 0  # accepted and evaluated
        self.alerts = 0

    @classmethod
    def for_config(
        cls, config: Config, rejections: Rejections, sinks: Sequence[AlertSink]
    ) -> TickProcessor:
        """The engine of ``config``'s rules and settings: the same for ``run`` and ``replay``."""
        engine = RuleEngine(config.rules, windows=config.engine.windows, bars=config.engine.bars)
        return cls(engine, rejections, sinks)

    def process(self, ticks: Sequence[Tick], *, source: str = "pipeline") -> list[AlertEvent]:
        """Evaluate ``ticks`` in order; return (and hand on) the alerts they fire."""
        rejected = 0

        def reject(tick: Tick, error: TickOutOfOrderError) -> None:
            nonlocal rejected
            rejected += 1
            self.rejections.record(error, source=source, where=f"{tick.symbol} at {tick.at}")

        alerts = self.engine.on_ticks(ticks, on_reject=reject)
        self.ticks += len(ticks) - rejected
        self.alerts += len(alerts)
        for alert in alerts:
            for sink in self.sinks:
                sink(alert)
        return alerts


async def run_engine(queue: asyncio.Queue[Tick], processor: TickProcessor) -> None:
    """Take ticks from ``queue`` in batches and process them, until cancelled."""
    while True:
        batch = [await queue.get()]
        while len(batch) < BATCH_SIZE and not queue.empty():
            batch.append(queue.get_nowait())
        processor.process(batch)
        for _ in batch:
            queue.task_done()


def log_alert(alert: AlertEvent) -> None:
    """The alert sink of the log: one ``alert_fired`` line per alert."""
    log.info(
        "alert_fired",
        headline=alert.headline(),
        symbol=alert.symbol,
        rule=alert.rule,
        kind=alert.kind,
        price_level=alert.level,  # "level" is the log level's key
        price=alert.price,
        at=alert.at,
        alert_id=alert.id,
    )
