"""The journal stage: every alert with its planned deliveries, stored before anyone sees it.

It runs in the engine task, after the alerts are attached their article and
before the hub and the channels: each batch's new alerts are written with
one delivery row per subscriber, channel and address, in one transaction.
The batch that goes on carries only the alerts stored now (one stored
before, re-detected after a restart or in a replay, is not published again).

While the journal refuses writes (a full disk), alerts wait in memory, up to
:data:`MAX_UNJOURNALED`, and are written first with the next batch, so their
order is kept; nothing goes on until they are stored.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from service.clock import SYSTEM_CLOCK, Clock
from service.errors import JournalError
from service.journal.records import Planned
from service.journal.roles import AlertLog
from service.models import AlertEvent
from service.processing.batch import Batch

log = structlog.get_logger("service.delivery")

# Alerts kept in memory while the journal cannot be written; the oldest go past this.
MAX_UNJOURNALED = 10_000


class AlertRecorder:
    """Stores each batch's alerts with their deliveries; passes on the ones stored now."""

    def __init__(
        self,
        alerts: AlertLog,
        plan: Callable[[AlertEvent], list[Planned]],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.alerts = alerts
        self._plan = plan
        self._clock = clock
        self.failures = 0  # batches the journal refused
        self._held: list[tuple[AlertEvent, list[Planned]]] = []

    @property
    def holding(self) -> int:
        """Alerts the journal refused, kept in memory until it takes them."""
        return len(self._held)

    def __call__(self, batch: Batch) -> Batch:
        if not batch.alerts and not self._held:
            return batch
        # Alerts a failed write left behind go first, so that order is kept.
        planned = self._held + [(alert, self._plan(alert)) for alert in batch.alerts]
        try:
            new = self.alerts.record_alerts(planned, now_ns=self._clock.now_ns())
        except JournalError as error:
            self._hold(planned, str(error))
            return batch.with_alerts(())
        if self._held:
            log.info("journal_recovered", alerts=len(self._held))
            self._held = []
        new_ids = {alert.id for alert in new}
        for alert, _ in planned:
            if alert.id not in new_ids:
                log.info("alert_already_journaled", alert_id=alert.id, symbol=alert.symbol)
        return batch.with_alerts(new)

    def _hold(self, planned: list[tuple[AlertEvent, list[Planned]]], error: str) -> None:
        self.failures += 1
        dropped = max(0, len(planned) - MAX_UNJOURNALED)
        self._held = planned[dropped:]
        log.error(
            "journal_write_failed",
            error=error,
            held=len(self._held),
            dropped=dropped,
            hint="the alerts are kept in memory and written once the journal's disk works again",
        )
