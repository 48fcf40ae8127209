"""The delivery pipeline: journal first, then the hub, then one worker per channel.

:meth:`DeliveryPipeline.on_batch` runs in the engine task, synchronously,
after each batch: it records the new alerts with their planned deliveries in
one transaction, hands them to the websocket hub and wakes the workers. Each
channel's worker takes the rows that are due, sends them, and records the
outcome: ``sent``; ``retry`` with a backoff and a next-attempt time; or
``dead`` after ``max_attempts`` (or at once, when the failure is permanent).
One channel's failures never hold up another: each has its own worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog

from service.backoff import retry_delay
from service.delivery.settings import DeliveryConfig
from service.delivery.subscribers import plan_deliveries
from service.errors import DeliveryError, JournalError
from service.journal.records import OPS_SUBSCRIBER, Channel, Delivery, Planned, Subscriber
from service.journal.roles import Journal
from service.models import AlertEvent, Tick
from service.text import first_line

log = structlog.get_logger("service.delivery")

# Rows a worker takes per round, per unit of its concurrency.
ROWS_PER_SLOT = 4
# A worker that cannot read or write the journal tries again after this long.
JOURNAL_RETRY_S = 1.0
# Alerts kept in memory while the journal cannot be written; the oldest go past this.
MAX_UNJOURNALED = 10_000


class Sender(Protocol):
    """One channel's way of sending one delivery; raises a DeliveryError subclass on failure."""

    name: Channel
    concurrency: int

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None: ...

    async def close(self) -> None: ...


class AlertHub(Protocol):
    """What the pipeline hands live data to (the dashboards' websocket hub)."""

    def observe_ticks(self, ticks: Sequence[Tick]) -> None: ...

    def publish_alert(self, alert: AlertEvent) -> None: ...


class DeliveryPipeline:
    """Journals alerts and delivers them on every configured channel."""

    def __init__(
        self,
        journal: Journal,
        *,
        senders: Sequence[Sender] = (),
        subscribers: Sequence[Subscriber] = (),
        config: DeliveryConfig | None = None,
        hub: AlertHub | None = None,
        mqtt_topic: Callable[[str], str] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.journal = journal
        self.senders = {sender.name: sender for sender in senders}
        self.config = config or DeliveryConfig()
        self.hub = hub
        self._mqtt_topic = mqtt_topic
        self._clock_ns = clock_ns
        self._static = tuple(subscribers)
        self.subscribers: dict[str, Subscriber] = {}
        self.reload_subscribers()
        self._wakes = {name: asyncio.Event() for name in self.senders}
        self._stopping = False
        self.journal_failures = 0
        # Outcomes of attempts since start-up, by (channel, status): the metrics' counter.
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self._unjournaled: list[tuple[AlertEvent, list[Planned]]] = []

    def reload_subscribers(self) -> None:
        """Read the subscribers again: those of alerts.toml, then those added through the API."""
        opted_out = self.journal.opted_out()
        merged = {s.id: s for s in self._static if s.id not in opted_out}
        for subscriber in self.journal.subscribers():
            if subscriber.id in merged:
                log.warning(
                    "subscriber_shadowed",
                    subscriber=subscriber.id,
                    hint="alerts.toml has a subscriber with this id; the file's one is used",
                )
                continue
            merged[subscriber.id] = subscriber
        self.subscribers = merged

    def on_batch(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> None:
        """Called by the engine task after each batch: journal, then publish, then wake."""
        if self.hub is not None and ticks:
            self.hub.observe_ticks(ticks)
        if not alerts and not self._unjournaled:
            return
        # Alerts a failed write left behind go first, so that order is kept.
        planned = self._unjournaled + [(alert, self._plan(alert)) for alert in alerts]
        try:
            new = self.journal.record_alerts(planned, now_ns=self._clock_ns())
        except JournalError as error:
            self._hold(planned, str(error))
            return
        if self._unjournaled:
            log.info("journal_recovered", alerts=len(self._unjournaled))
            self._unjournaled = []
        new_ids = {alert.id for alert in new}
        for alert, _ in planned:
            if alert.id not in new_ids:
                log.info("alert_already_journaled", alert_id=alert.id, symbol=alert.symbol)
        if self.hub is not None:
            for alert in new:
                self.hub.publish_alert(alert)
        woken: set[Channel] = {
            item.channel for alert, items in planned if alert.id in new_ids for item in items
        }
        for channel in woken:
            self._wakes[channel].set()

    @property
    def holding(self) -> int:
        """Alerts the journal refused, kept in memory until it takes them."""
        return len(self._unjournaled)

    def _hold(self, planned: list[tuple[AlertEvent, list[Planned]]], error: str) -> None:
        """Keep alerts the journal refused, to write them with the next batch."""
        self.journal_failures += 1
        dropped = max(0, len(planned) - MAX_UNJOURNALED)
        self._unjournaled = planned[dropped:]
        log.error(
            "journal_write_failed",
            error=error,
            held=len(self._unjournaled),
            dropped=dropped,
            hint="the alerts are kept in memory and written once the journal's disk works again",
        )

    def _plan(self, alert: AlertEvent) -> list[Planned]:
        topic = None if self._mqtt_topic is None else self._mqtt_topic(alert.symbol)
        return plan_deliveries(
            alert, self.subscribers.values(), self.senders.keys(), mqtt_topic=topic
        )

    async def run(self) -> None:
        """Run one worker per channel until :meth:`stop`; rows left pending last time go first."""
        try:
            async with asyncio.TaskGroup() as group:
                for sender in self.senders.values():
                    group.create_task(self._work(sender), name=f"delivery:{sender.name}")
        finally:
            for sender in self.senders.values():
                await sender.close()

    def stop(self) -> None:
        """Let each worker finish the deliveries in hand, then end :meth:`run`."""
        self._stopping = True
        for wake in self._wakes.values():
            wake.set()

    async def _work(self, sender: Sender) -> None:
        wake = self._wakes[sender.name]
        limit = max(1, sender.concurrency) * ROWS_PER_SLOT
        while not self._stopping:
            wake.clear()
            try:
                await self._round(sender, wake, limit)
            except JournalError as error:
                log.error("journal_failed", channel=sender.name, error=str(error))
                await asyncio.sleep(JOURNAL_RETRY_S)

    async def _round(self, sender: Sender, wake: asyncio.Event, limit: int) -> None:
        """Send what is due now, or wait until something is."""
        now_ns = self._clock_ns()
        rows = self.journal.due(sender.name, now_ns=now_ns, limit=limit)
        if not rows:
            next_ns = self.journal.next_due_ns(sender.name)
            timeout = None if next_ns is None else max(0.0, (next_ns - now_ns) / 1e9)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()
            return
        for start in range(0, len(rows), sender.concurrency):
            if self._stopping:
                return
            chunk = rows[start : start + sender.concurrency]
            await asyncio.gather(*(self._attempt(sender, row) for row in chunk))

    async def _attempt(self, sender: Sender, row: Delivery) -> None:
        subscriber: Subscriber | None = None
        if row.subscriber != OPS_SUBSCRIBER:
            subscriber = self.subscribers.get(row.subscriber)
            if (
                subscriber is None
                or not subscriber.confirmed
                or (row.channel, row.target) not in subscriber.targets()
            ):
                # Unsubscribed (or the address was removed) after the alert was planned.
                self.journal.mark_cancelled(
                    row.id, "the subscriber or this address was removed", now_ns=self._clock_ns()
                )
                self.outcomes[row.channel, "cancelled"] += 1
                return
        try:
            await sender.send(row, subscriber)
        except DeliveryError as error:
            self._failed(row, error.detail, retryable=error.retryable)
        except Exception as error:
            # A bug in a sender: logged with its traceback, and retried like any failure.
            log.exception("delivery_sender_crashed", channel=row.channel, alert_id=row.alert_id)
            self._failed(row, f"internal error: {first_line(error, 200)}", retryable=True)
        else:
            self.journal.mark_sent(row.id, now_ns=self._clock_ns())
            self.outcomes[row.channel, "sent"] += 1
            log.debug(
                "delivery_sent",
                channel=row.channel,
                alert_id=row.alert_id,
                subscriber=row.subscriber,
                attempt=row.attempts + 1,
            )

    def _failed(self, row: Delivery, error: str, *, retryable: bool) -> None:
        attempt = row.attempts + 1
        now_ns = self._clock_ns()
        context = {
            "channel": row.channel,
            "alert_id": row.alert_id,
            "subscriber": row.subscriber,
            "attempt": attempt,
            "error": error,
        }
        if not retryable or attempt >= self.config.max_attempts:
            self.journal.mark_dead(row.id, error, now_ns=now_ns)
            self.outcomes[row.channel, "dead"] += 1
            reason = "permanent failure" if not retryable else "out of attempts"
            log.error("delivery_dead", **context, reason=reason)
            return
        delay_s = retry_delay(
            attempt,
            initial=self.config.retry_initial_seconds,
            maximum=self.config.retry_max_seconds,
        )
        self.journal.mark_retry(row.id, error, next_ns=now_ns + int(delay_s * 1e9), now_ns=now_ns)
        self.outcomes[row.channel, "failed"] += 1
        log.warning("delivery_failed", **context, retry_in_s=round(delay_s, 2))

    def stats(self) -> dict[str, object]:
        return {
            "pending": self.journal.pending_count(),
            "by_channel": _by_channel(self.journal.delivery_counts().items()),
            "subscribers": len(self.subscribers),
            "journal_failures": self.journal_failures,
        }


def _by_channel(counts: Iterable[tuple[tuple[str, str], int]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (channel, status), count in counts:
        table.setdefault(channel, {})[status] = count
    return table
