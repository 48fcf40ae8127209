"""A batch on its way from the engine to people, and the ordered stages it walks.

Every stage has one signature: it takes the :class:`Batch` and returns the
batch the next stage sees (the journal's keeps only the alerts it had not
stored before). The list is built in one place, the composition root, and
its order is the order of the walk::

    arrivals → history → attach articles → count → log → journal → hub → wake channels → latency

A stage that raises ends its batch's walk there, logged with the stage's
name and the batch's alert ids: nothing after a failed journal write, for
instance, sees alerts it did not store. The engine goes on with the next batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from service.models import AlertEvent, Receipt, Tick

log = structlog.get_logger("service.processing")


@dataclass(frozen=True, slots=True)
class Batch:
    """Ticks the engine accepted together and the alerts they fired.

    ``received`` is when the oldest of the ticks was put into the queue
    (monotonic seconds): the start of the tick-to-alert latency. Alerts of a
    timer (a stale feed) come with no ticks and ``None``.
    """

    ticks: Sequence[Tick]
    alerts: Sequence[AlertEvent]
    received: float | None = None
    # The sources' receipts of every tick the batch took in (accepted or not): settled
    # once the commit that covers the batch is done.
    receipts: Sequence[Receipt] = ()

    def with_alerts(self, alerts: Sequence[AlertEvent]) -> Batch:
        return Batch(self.ticks, alerts, self.received, self.receipts)


Stage = Callable[[Batch], Batch]
# The stage that commits (the journal's): what comes after it sees only what it stored.
COMMIT_STAGE = "journal"


class Stages:
    """The ordered, named stages after the engine; calling it walks a batch through them all."""

    def __init__(self, stages: Sequence[tuple[str, Stage]] = ()) -> None:
        self._stages = tuple(stages)
        self.failures = 0

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._stages]

    def __call__(self, batch: Batch) -> Batch:
        return self._walk(self._stages, batch)

    def run_after(self, name: str, batch: Batch) -> Batch:
        """Walk ``batch`` through the stages after the one called ``name``."""
        names = self.names
        start = names.index(name) + 1 if name in names else len(names)
        return self._walk(self._stages[start:], batch)

    def _walk(self, stages: Sequence[tuple[str, Stage]], batch: Batch) -> Batch:
        for name, stage in stages:
            try:
                batch = stage(batch)
            except Exception:
                self.failures += 1
                log.exception(
                    "stage_failed",
                    stage=name,
                    alert_ids=[alert.id for alert in batch.alerts],
                    ticks=len(batch.ticks),
                )
                return batch.with_alerts(())
        return batch
