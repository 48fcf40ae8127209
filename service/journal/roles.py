"""What the service needs of a journal, as the roles its parts use.

Each part depends on the role it uses, never on an implementation: the
engine task's recorder on :class:`AlertLog` and :class:`Checkpoints`, the delivery workers on
:class:`Outbox`, the sign-up API on :class:`SubscriberStore` and
:class:`Secrets`, the rules API on :class:`RuleStore`, readiness on
:class:`Probe`. :class:`Journal` is all of them;
:class:`~service.journal.sqlite.SqliteJournal` implements it, and a server
database can too. ``tests/contract/test_journal_roles.py`` holds every
implementation to the same behaviour.

Every method is short and synchronous, and commits before it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from service.journal.records import (
    Channel,
    Checkpoint,
    Delivery,
    DeliveryRecord,
    Planned,
    StoredRule,
    Subscriber,
)
from service.models import AlertEvent, AlertPayload, Viewer


class AlertLog(Protocol):
    """Alerts, each stored once, in the order they were recorded."""

    def record_alerts(
        self,
        alerts: Sequence[tuple[AlertEvent, Sequence[Planned]]],
        *,
        now_ns: int,
        checkpoint: Checkpoint | None = None,
    ) -> list[AlertEvent]:
        """Store each alert with its planned deliveries, in one transaction; return the new ones.

        An alert already stored (same id) is skipped with its deliveries. With
        ``checkpoint``, the engine's state and the sources' places are stored in
        the same transaction: all of it is stored, or nothing. Raises
        :class:`~service.errors.JournalError` when nothing could be stored.
        """
        ...

    def alerts_since_seq(self, seq: int, *, limit: int) -> list[tuple[int, AlertPayload]]:
        """Up to ``limit`` alerts stored after position ``seq`` (0: all), oldest first, each
        with its position; positions grow in commit order, so a reader goes on from the last."""
        ...

    def last_seq(self) -> int:
        """The position of the newest alert (0: none yet)."""
        ...

    def alerts_after(
        self,
        since: str | None,
        symbols: Iterable[str] | None,
        *,
        limit: int | None = None,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]:
        """Alerts recorded after the alert ``since`` (all, when ``None``), oldest first.

        ``symbols`` ``None`` means every symbol; ``viewer`` ``None`` means every
        owner's alerts, else those for everyone and the viewer's own. Raises
        :class:`~service.errors.UnknownAlertError` when ``since`` is not stored.
        """
        ...

    def alerts_from(
        self,
        ts_ns: int,
        *,
        symbol: str | None = None,
        limit: int = 100,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]:
        """Alerts that fired at or after ``ts_ns`` (of ``symbol``), oldest recorded first."""
        ...

    def recent_alerts(
        self, *, symbol: str | None = None, limit: int = 100, viewer: Viewer | None = None
    ) -> list[AlertPayload]:
        """The latest ``limit`` alerts (of ``symbol``), oldest first."""
        ...

    def alert_count(self) -> int: ...


class Outbox(Protocol):
    """The deliveries still to make, and what became of the others."""

    def due(self, channel: Channel, *, now_ns: int, limit: int) -> list[Delivery]:
        """Deliveries of ``channel`` to try now (pending, or retries whose time has come)."""
        ...

    def claim(self, channel: Channel, *, now_ns: int, limit: int, lease_ns: int) -> list[Delivery]:
        """Deliveries of ``channel`` due now, taken for ``lease_ns``, oldest first.

        No other worker (in this process or another) gets them until the lease
        ends or they are marked sent, retry, dead or cancelled.
        """
        ...

    def release_claims(self) -> int:
        """End every claim now: for one process starting over, whose sends all stopped."""
        ...

    def next_due_ns(self, channel: Channel) -> int | None:
        """When the next delivery of ``channel`` is due (``None``: none is waiting)."""
        ...

    def mark_sent(self, delivery_id: int, *, now_ns: int) -> None: ...

    def mark_retry(self, delivery_id: int, error: str, *, next_ns: int, now_ns: int) -> None: ...

    def mark_dead(self, delivery_id: int, error: str, *, now_ns: int) -> None: ...

    def mark_cancelled(self, delivery_id: int, reason: str, *, now_ns: int) -> None: ...

    def deliveries(self, *, alert_id: str | None = None) -> list[DeliveryRecord]:
        """Every delivery (of ``alert_id``), in the order they were planned."""
        ...

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, status)."""
        ...

    def pending_count(self) -> int:
        """Deliveries not yet sent, dead or cancelled."""
        ...


class SubscriberStore(Protocol):
    """The subscribers who signed up through the API, and the opt-outs of alerts.toml's."""

    def subscribers(self) -> list[Subscriber]:
        """Every stored subscriber, oldest first."""
        ...

    def put_subscriber(self, subscriber: Subscriber, *, now_ns: int) -> None:
        """Add ``subscriber``, or replace the one with its id (keeping when it signed up)."""
        ...

    def remove_subscriber(self, subscriber_id: str) -> bool:
        """Remove it; ``False`` when there was none."""
        ...

    def pending_signups(self) -> list[tuple[Subscriber, int]]:
        """The subscribers still to confirm, each with when it signed up, oldest first."""
        ...

    def expire_pending(self, *, before_ns: int) -> list[str]:
        """Remove the subscribers still to confirm that signed up at or before ``before_ns``."""
        ...

    def opt_out(self, subscriber_id: str, *, now_ns: int) -> None:
        """Record that ``subscriber_id`` (one of alerts.toml) unsubscribed through its link."""
        ...

    def opted_out(self) -> set[str]: ...


class RuleStore(Protocol):
    """The rules set through the API, the operator's and the subscribers'."""

    def stored_rules(self) -> list[StoredRule]:
        """Every stored rule, oldest first."""
        ...

    def put_rule(self, rule: StoredRule) -> None:
        """Add ``rule``, or replace the one with its id (keeping when it was made)."""
        ...

    def remove_rule(self, rule_id: str) -> bool:
        """Remove it; ``False`` when there was none."""
        ...


class Checkpoints(Protocol):
    """The engine's state, its tick log and the sources' places, as of the last commit."""

    def load_checkpoint(self, scope: str = "") -> Checkpoint:
        """The engine ``scope``'s latest states, sources' places and tick log (empty when new).

        Every symbol's state is given, whichever shard wrote it: the caller keeps its own.
        """
        ...


class Secrets(Protocol):
    def secret(self) -> bytes:
        """This journal's signing key, made on first use, the same ever after."""
        ...


class Probe(Protocol):
    def check_writable(self, *, now_ns: int) -> None:
        """Commit one write; raises :class:`~service.errors.JournalError` if it cannot."""
        ...


class Journal(AlertLog, Outbox, SubscriberStore, RuleStore, Checkpoints, Secrets, Probe, Protocol):
    """Every role, with the journal's own life: opened before use, closed at the end."""

    @property
    def path(self) -> str: ...

    def open(self) -> None:
        """Connect (creating or migrating the store); raises :class:`JournalError` if it cannot."""
        ...

    def close(self) -> None: ...
