"""The rows the journal keeps: subscribers, planned deliveries, deliveries due and done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from service.models import OPS_KINDS, AlertEvent, AlertPayload

Channel = Literal["email", "push", "webpush", "webhook", "mqtt"]
CHANNELS: tuple[Channel, ...] = ("email", "push", "webpush", "webhook", "mqtt")
# The subscriber id of deliveries that belong to no subscriber (MQTT out).
OPS_SUBSCRIBER = "-"

Status = Literal["pending", "retry", "sent", "dead", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "retry", "sent", "dead", "cancelled")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebPushSubscription:
    """A browser's push subscription (PushSubscription.toJSON())."""

    endpoint: str
    p256dh: str
    auth: str

    def to_dict(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscriber:
    """Someone who gets alerts: on ``symbols`` (``("*",)``: all) and ``kinds`` (empty: all
    market alerts; ``stale_feed`` only when listed).

    ``confirmed`` is false for an email subscriber who has not yet clicked the
    opt-in link; nothing is sent to such a subscriber.
    """

    id: str
    email: str | None = None
    push: tuple[str, ...] = field(default=(), repr=False)  # apprise URLs hold tokens
    webpush: tuple[WebPushSubscription, ...] = field(default=(), repr=False)
    webhook: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    symbols: tuple[str, ...] = ("*",)
    kinds: tuple[str, ...] = ()
    confirmed: bool = True
    # The generation of the "manage my alerts" link: rotating it makes the older links useless.
    manage_generation: int = 0

    def wants(self, alert: AlertEvent) -> bool:
        if not self.confirmed:
            return False
        if "*" not in self.symbols and alert.symbol not in self.symbols:
            return False
        if alert.kind in OPS_KINDS:
            return alert.kind in self.kinds  # feed trouble only for those who ask for it
        return not self.kinds or alert.kind in self.kinds

    def targets(self) -> list[tuple[Channel, str]]:
        """Every (channel, address) this subscriber receives on."""
        targets: list[tuple[Channel, str]] = []
        if self.email:
            targets.append(("email", self.email))
        targets += [("push", url) for url in self.push]
        targets += [("webpush", sub.endpoint) for sub in self.webpush]
        if self.webhook:
            targets.append(("webhook", self.webhook))
        return targets


@dataclass(frozen=True, slots=True)
class Planned:
    """One delivery to make: ``alert`` to ``target`` on ``channel`` for ``subscriber``."""

    subscriber: str
    channel: Channel
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A delivery that is due: what to send, where, and how many tries so far."""

    id: int
    alert_id: str
    subscriber: str
    channel: Channel
    target: str
    attempts: int
    alert: AlertPayload  # as every channel sends it


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    """A delivery as stored, for people and tests."""

    alert_id: str
    subscriber: str
    channel: Channel
    target: str
    status: Status
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """What the engine task keeps, as of one commit: symbols' state, the tick log, sources' places.

    Every part is text its writer reads back (versioned by it); the journal
    only stores it, atomically with the alerts of the same commit. A
    checkpoint names only what changed since the last: a symbol or a source it
    leaves out keeps its stored value. The tick log holds the ticks evaluated
    since the states were last written in full (``reset_log``: these states
    cover every tick logged so far, and the log starts over); a restart
    restores the states, then evaluates the log again.

    ``scope`` is the engine shard whose checkpoint it is (``""``: the only
    engine): each shard has its own tick log and its own sources' places, and
    its symbols' states are its alone (a symbol belongs to one shard).
    """

    symbols: Mapping[str, str] = field(default_factory=dict)
    positions: Mapping[str, str] = field(default_factory=dict)
    ticks: Sequence[str] = ()  # entries to append to the tick log, oldest first
    reset_log: bool = False
    scope: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRule:
    """A rule set through the rules API, as given: the keys of an alerts.toml ``[[rules]]`` table.

    ``owner`` is the subscriber whose rule it is; ``None``: the operator's (set
    with an admin token). The definition is kept as given and read again with
    the config's reader at every start, so a rule means what alerts.toml would.
    """

    id: str
    owner: str | None
    definition: Mapping[str, Any]
    created_ns: int
    updated_ns: int
