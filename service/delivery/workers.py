"""The delivery workers: one per channel, sending what the outbox holds due.

Each worker claims the rows of its channel that are due (for a lease, so
that workers in other processes on the same outbox leave them), sends them (up to
the sender's concurrency at once), asks :mod:`~service.delivery.decide` what
became of each, and records that: sent; retried later with a backoff; dead,
with its last error; or cancelled, when its subscriber is gone. One
channel's failures never hold up another. A worker sleeps until its next
row is due or until :meth:`DeliveryWorkers.wake` (a stage after the journal)
says new rows are there; time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import structlog

from service.clock import SYSTEM_CLOCK, Clock
from service.delivery.audience import Audience
from service.delivery.decide import Backoff, Cancelled, Dead, Decision, Retry, Sent, after_send
from service.delivery.decide import before_send as cancel_if_gone
from service.errors import DeliveryError, JournalError
from service.journal.records import Channel, Delivery, Subscriber
from service.journal.roles import Outbox
from service.processing.batch import Batch

log = structlog.get_logger("service.delivery")

# Rows a worker takes per round, per unit of its concurrency.
ROWS_PER_SLOT = 4
# A worker that cannot read or write the journal tries again after this long.
JOURNAL_RETRY_S = 1.0


class Sender(Protocol):
    """One channel's way of sending one delivery; raises a DeliveryError subclass on failure."""

    name: Channel
    concurrency: int

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None: ...

    async def close(self) -> None: ...


class DeliveryWorkers:
    """A worker per sender, over the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        senders: Sequence[Sender],
        audience: Audience,
        *,
        max_attempts: int,
        backoff: Backoff,
        clock: Clock = SYSTEM_CLOCK,
        lease_s: float = 120.0,
        release_on_start: bool = True,
        poll_s: float | None = None,
    ) -> None:
        self.outbox = outbox
        # Each round claims its rows for this long; with release_on_start (this process is
        # the outbox's only worker, a file journal) the claims of a previous run end at start.
        self._lease_ns = round(lease_s * 1e9)
        self._release_on_start = release_on_start
        # In a process of its own (--role delivery), nothing wakes a worker when another
        # process journals an alert: it looks at the outbox at least this often.
        self._poll_s = poll_s
        self.senders = {sender.name: sender for sender in senders}
        self.audience = audience
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._clock = clock
        self._wakes = {name: asyncio.Event() for name in self.senders}
        self._stopping = False
        # Outcomes of attempts since start-up, by (channel, status): the metrics' counter.
        self.outcomes: Counter[tuple[str, str]] = Counter()
        # Rounds each worker has done (a look at the outbox, and the sends it found due).
        self.rounds: Counter[str] = Counter()
        self.waiting: set[str] = set()  # channels whose worker waits for a wake or a due time

    def idle(self) -> bool:
        """Whether every worker waits, with no wake pending: nothing is sent until one comes
        or a row falls due."""
        return self.waiting == set(self.senders) and not any(
            wake.is_set() for wake in self._wakes.values()
        )

    def wake(self, batch: Batch) -> Batch:
        """The stage after the journal: new rows are waiting for every channel that has any."""
        if batch.alerts:
            for wake in self._wakes.values():
                wake.set()
        return batch

    async def run(self) -> None:
        """Run one worker per channel until :meth:`stop`; rows left pending last time go first."""
        if self._release_on_start:
            try:
                released = self.outbox.release_claims()
            except JournalError as error:
                # They end with their leases instead.
                log.error("journal_failed", channel="*", error=str(error))
            else:
                if released:
                    log.info("delivery_claims_released", deliveries=released)
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
                await self._clock.sleep(JOURNAL_RETRY_S)

    async def _round(self, sender: Sender, wake: asyncio.Event, limit: int) -> None:
        """Send what is due now, or wait until something is."""
        now_ns = self._clock.now_ns()
        rows = self.outbox.claim(sender.name, now_ns=now_ns, limit=limit, lease_ns=self._lease_ns)
        self.rounds[sender.name] += 1
        if not rows:
            next_ns = self.outbox.next_due_ns(sender.name)
            timeout = None if next_ns is None else max(0.0, (next_ns - now_ns) / 1e9)
            if self._poll_s is not None:
                timeout = self._poll_s if timeout is None else min(timeout, self._poll_s)
            self.waiting.add(sender.name)
            try:
                await self._clock.wait(wake, timeout)
            finally:
                self.waiting.discard(sender.name)
            return
        for start in range(0, len(rows), sender.concurrency):
            if self._stopping:
                return
            chunk = rows[start : start + sender.concurrency]
            await asyncio.gather(*(self._attempt(sender, row) for row in chunk))

    async def _attempt(self, sender: Sender, row: Delivery) -> None:
        subscriber = self.audience.subscribers.get(row.subscriber)
        decision: Decision | None = cancel_if_gone(row, subscriber)
        if decision is None:
            failure: BaseException | None = None
            try:
                await sender.send(row, subscriber)
            except DeliveryError as error:
                failure = error
            except Exception as error:
                # A bug in a sender: logged with its traceback; decide() retries it once.
                log.exception("delivery_sender_crashed", channel=row.channel, alert_id=row.alert_id)
                failure = error
            decision = after_send(
                row,
                failure,
                now_ns=self._clock.now_ns(),
                max_attempts=self._max_attempts,
                backoff=self._backoff,
            )
        self._apply(row, decision)

    def _apply(self, row: Delivery, decision: Decision) -> None:
        now_ns = self._clock.now_ns()
        context = {
            "channel": row.channel,
            "alert_id": row.alert_id,
            "subscriber": row.subscriber,
            "attempt": row.attempts + 1,
        }
        if isinstance(decision, Sent):
            self.outbox.mark_sent(row.id, now_ns=now_ns)
            self.outcomes[row.channel, "sent"] += 1
            log.debug("delivery_sent", **context)
        elif isinstance(decision, Retry):
            self.outbox.mark_retry(row.id, decision.error, next_ns=decision.at_ns, now_ns=now_ns)
            self.outcomes[row.channel, "failed"] += 1
            log.warning(
                "delivery_failed",
                **context,
                error=decision.error,
                retry_in_s=round(decision.delay_s, 2),
            )
        elif isinstance(decision, Dead):
            self.outbox.mark_dead(row.id, decision.error, now_ns=now_ns)
            self.outcomes[row.channel, "dead"] += 1
            log.error("delivery_dead", **context, error=decision.error, reason=decision.reason)
        elif isinstance(decision, Cancelled):
            self.outbox.mark_cancelled(row.id, decision.reason, now_ns=now_ns)
            self.outcomes[row.channel, "cancelled"] += 1
