"""Who gets which alert, on which channels: pure decisions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from service.journal.records import OPS_SUBSCRIBER, Channel, Planned, Subscriber
from service.models import AlertEvent


def plan_deliveries(
    alert: AlertEvent,
    subscribers: Iterable[Subscriber],
    channels: Iterable[Channel],
    *,
    mqtt_topic: str | None = None,
) -> list[Planned]:
    """The deliveries ``alert`` makes: one per subscriber, channel and address.

    Only channels that are configured (``channels``) get rows; with
    ``mqtt_topic`` the alert is also published there once, for no subscriber.
    The alert of a subscriber's own rule goes to that subscriber alone, on
    every channel they have, whatever symbols and kinds they chose: they set
    the rule. It is not published on the operator's MQTT topic either.
    """
    enabled = set(channels)
    owner = alert.owner
    planned = [
        Planned(subscriber.id, channel, target)
        for subscriber in subscribers
        if (subscriber.wants(alert) if owner is None else subscriber.id == owner)
        and subscriber.confirmed
        for channel, target in subscriber.targets()
        if channel in enabled
    ]
    if mqtt_topic is not None and "mqtt" in enabled and owner is None:
        planned.append(Planned(OPS_SUBSCRIBER, "mqtt", mqtt_topic))
    return list(dict.fromkeys(planned))
