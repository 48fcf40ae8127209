"""Who gets alerts: the subscribers of alerts.toml and of the API, and the channels that reach them.

The subscribers of the file are vouched for by whoever wrote it; those of the
API are read from the journal's subscriber store, again after every change
(:meth:`Audience.reload`). A subscriber of the file who unsubscribed through
a mail's link is left out. Who gets which alert is the pure decision of
:func:`~service.delivery.subscribers.plan_deliveries`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import structlog

from service.delivery.subscribers import plan_deliveries
from service.journal.records import Channel, Planned, Subscriber
from service.journal.roles import SubscriberStore
from service.models import AlertEvent

log = structlog.get_logger("service.delivery")


class Audience:
    """The subscribers known now, and the deliveries an alert makes to them."""

    def __init__(
        self,
        store: SubscriberStore,
        *,
        static: Sequence[Subscriber] = (),
        channels: Collection[Channel] = (),
        mqtt_topic: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.static = tuple(static)
        self.static_ids = frozenset(subscriber.id for subscriber in self.static)
        self.channels = frozenset(channels)
        self._mqtt_topic = mqtt_topic
        self.subscribers: dict[str, Subscriber] = {s.id: s for s in self.static}

    def reload(self) -> None:
        """Read the subscribers again: those of alerts.toml, then those added through the API."""
        opted_out = self.store.opted_out()
        merged = {s.id: s for s in self.static if s.id not in opted_out}
        for subscriber in self.store.subscribers():
            if subscriber.id in merged:
                log.warning(
                    "subscriber_shadowed",
                    subscriber=subscriber.id,
                    hint="alerts.toml has a subscriber with this id; the file's one is used",
                )
                continue
            merged[subscriber.id] = subscriber
        self.subscribers = merged

    def plan(self, alert: AlertEvent) -> list[Planned]:
        """The deliveries ``alert`` makes: one per subscriber, channel and address."""
        topic = None if self._mqtt_topic is None else self._mqtt_topic(alert.symbol)
        return plan_deliveries(alert, self.subscribers.values(), self.channels, mqtt_topic=topic)
