"""The senders of a config: one per channel that is configured."""

from __future__ import annotations

from service.delivery.email import EmailSender
from service.delivery.mqtt_out import MqttOutSender
from service.delivery.push import AppriseSender, WebPushSender
from service.delivery.settings import DeliveryConfig, PushConfig, WebhookConfig
from service.delivery.webhook import WebhookSender
from service.delivery.workers import Sender


def senders_of(
    delivery: DeliveryConfig,
    push: PushConfig,
    webhook: WebhookConfig,
    *,
    email: EmailSender | None,
    mqtt_out: MqttOutSender | None,
) -> list[Sender]:
    """Apprise push, Web Push and webhooks always; email and MQTT out when configured."""
    concurrency = delivery.concurrency
    senders: list[Sender] = [
        AppriseSender(push, concurrency=concurrency),
        WebPushSender(push, concurrency=concurrency),
        WebhookSender(webhook, concurrency=concurrency),
    ]
    if email is not None:
        senders.append(email)
    if mqtt_out is not None:
        senders.append(mqtt_out)
    return senders
