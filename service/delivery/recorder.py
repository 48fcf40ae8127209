"""The journal stage: each commit stores alerts, their deliveries and the engine's state at once.

It runs in the engine task, after the alerts are attached their article and
before the hub and the channels. A commit is one transaction holding:

* the batch's new alerts, each with one delivery row per subscriber, channel
  and address (an alert stored before, re-detected after a restart or in a
  replay, is neither stored nor published again);
* the engine's state after them (the ticks evaluated since the last commit, for
  the tick log, and now and then the states of the symbols in full: see
  :mod:`service.processing.checkpoint`), and where each replay stands in its
  file (:class:`~service.journal.records.Checkpoint`).

Only then are the sources told (an MQTT message is acknowledged, so the broker
keeps every tick no commit covers yet). A batch that fired alerts commits at
once; ticks alone are grouped, up to ``every_ticks`` ticks or ``within_s``
seconds, so that each tick does not pay a commit of its own.

While the journal refuses writes (a full disk), the commit's alerts and
state wait in memory and :attr:`AlertRecorder.failing` says so: the engine
task then takes no more ticks and tries again, so acknowledgements stop and
the broker keeps the ticks, and nothing piles up here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from service.clock import SYSTEM_CLOCK, Clock
from service.errors import JournalError
from service.journal.records import Checkpoint, Planned
from service.journal.roles import AlertLog
from service.models import AlertEvent, Receipt
from service.processing.batch import Batch
from service.processing.checkpoint import StateChange

log = structlog.get_logger("service.delivery")

# Alerts kept in memory while the journal cannot be written; the oldest go past this.
MAX_UNJOURNALED = 10_000


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """How long evaluated ticks may wait for the commit that covers them.

    Ticks a source waits to hear of (QoS 1 messages to acknowledge, a replay's
    place) wait at most ``within_s``; the state of ticks no source waits for
    (QoS 0, websocket feeds: at most once anyway) at most ``state_within_s``.
    """

    every_ticks: int = 1_000
    within_s: float = 0.02
    state_within_s: float = 1.0


class AlertRecorder:
    """Commits alerts with their deliveries and the engine's state; settles the sources after."""

    def __init__(
        self,
        alerts: AlertLog,
        plan: Callable[[AlertEvent], list[Planned]],
        *,
        state: Callable[[], StateChange] | None = None,
        positions: Mapping[str, Callable[[int], str]] | None = None,
        settle: Callable[[str, Sequence[int]], None] | None = None,
        policy: CommitPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        scope: str = "",
    ) -> None:
        self.alerts = alerts
        self.scope = scope  # the engine shard whose checkpoint this commits
        self._plan = plan
        self._state = state
        self._positions = positions or {}
        self._settle = settle
        self.policy = policy or CommitPolicy()
        self._clock = clock
        self.failures = 0  # commits the journal refused
        self.failing = False  # the last commit was refused: the engine waits
        self.commits = 0
        self._held: list[tuple[AlertEvent, list[Planned]]] = []
        self._held_state = StateChange()
        self._receipts: list[Receipt] = []
        self._ticks = 0  # evaluated since the last commit
        self._since: float | None = None  # when the first of them came (monotonic)

    @property
    def holding(self) -> int:
        """Alerts the journal refused, kept in memory until it takes them."""
        return len(self._held)

    def __call__(self, batch: Batch) -> Batch:
        if self._since is None:
            self._since = self._clock.monotonic()
        self._ticks += len(batch.ticks)
        self._receipts.extend(batch.receipts)
        if batch.alerts or self._held or self._ticks >= self.policy.every_ticks:
            return batch.with_alerts(self._commit(batch.alerts))
        return batch  # no alerts: ticks only, to be covered by a later commit

    def due_in(self) -> float | None:
        """Seconds until the waiting ticks must be committed (``None``: nothing waits)."""
        if self._since is None:
            return None
        policy = self.policy
        within = policy.within_s if self._receipts else policy.state_within_s
        return within - (self._clock.monotonic() - self._since)

    def commit(self) -> list[AlertEvent]:
        """Commit what waits now (a due group of ticks, a retry, the last one at shutdown)."""
        if self._since is None and not self._held:
            return []
        return self._commit(())

    def _commit(self, alerts: Sequence[AlertEvent]) -> list[AlertEvent]:
        # Alerts a refused commit left behind go first, so that order is kept.
        planned = self._held + [(alert, self._plan(alert)) for alert in alerts]
        state = self._held_state
        if self._state is not None:
            state = state.then(self._state())
        checkpoint = Checkpoint(
            symbols=state.symbols,
            positions=self._positions_of(self._receipts),
            ticks=state.ticks,
            reset_log=state.reset_log,
            scope=self.scope,
        )
        try:
            new = self.alerts.record_alerts(
                planned, now_ns=self._clock.now_ns(), checkpoint=checkpoint
            )
        except JournalError as error:
            self._refused(planned, state, str(error))
            return []
        if self.failing:
            log.info("journal_recovered", alerts=len(self._held))
        self.failing = False
        self._held, self._held_state = [], StateChange()
        self.commits += 1
        new_ids = {alert.id for alert in new}
        for alert, _ in planned:
            if alert.id not in new_ids:
                log.info("alert_already_journaled", alert_id=alert.id, symbol=alert.symbol)
        receipts, self._receipts = self._receipts, []
        self._ticks, self._since = 0, None
        if self._settle is not None:
            for source, group in itertools.groupby(receipts, key=lambda receipt: receipt[0]):
                self._settle(source, [token for _, token in group])
        return new

    def _positions_of(self, receipts: Sequence[Receipt]) -> dict[str, str]:
        last: dict[str, int] = {}
        for source, token in receipts:
            if source in self._positions:
                last[source] = token
        return {source: self._positions[source](token) for source, token in last.items()}

    def _refused(
        self, planned: list[tuple[AlertEvent, list[Planned]]], state: StateChange, error: str
    ) -> None:
        self.failures += 1
        dropped = max(0, len(planned) - MAX_UNJOURNALED)
        self._held, self._held_state = planned[dropped:], state
        if not self.failing:
            log.error(
                "journal_write_failed",
                error=error,
                held=len(self._held),
                dropped=dropped,
                hint="no tick is acknowledged until the journal takes writes again; the "
                "broker keeps them, and the engine goes on once it does",
            )
        self.failing = True
