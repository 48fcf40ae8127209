"""MQTT out: every alert published to ``alerts/{symbol}`` (QoS 1), for other systems to react.

One long-lived connection, kept by :meth:`MqttOutSender.run` with the same
backoff and log lines as the MQTT source; a delivery made while the broker is
away fails as retryable and is sent once the link is back.
"""

from __future__ import annotations

import json

import aiomqtt

from service.delivery.settings import MqttOutConfig
from service.errors import RetryableDeliveryError
from service.journal.records import Channel, Delivery, Subscriber
from service.reconnect import Link, reconnecting
from service.text import first_line

PUBLISH_TIMEOUT_S = 10.0


class MqttOutSender:
    name: Channel = "mqtt"

    def __init__(self, config: MqttOutConfig) -> None:
        self.config = config
        self.concurrency = 16  # publishes wait for their PUBACK in parallel
        self.link = Link.for_source(config, prefix="mqtt_out")
        self._client: aiomqtt.Client | None = None

    async def run(self) -> None:
        """Keep the connection up until cancelled."""
        config = self.config
        client = config.broker.client(config.client_id)

        async def session() -> None:
            try:
                async with client:
                    self._client = client
                    self.link.up(topic=f"{config.topic_prefix}/{{symbol}}", qos=config.qos)
                    # aiomqtt raises from the messages iterator when the link drops.
                    async for _message in client.messages:
                        pass
            finally:
                self._client = None

        await reconnecting(self.link, session, retry_on=(aiomqtt.MqttError,))

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None:
        client = self._client
        if client is None:
            raise RetryableDeliveryError(f"not connected to {self.config.url}")
        payload = json.dumps(delivery.alert, separators=(",", ":"))
        try:
            await client.publish(
                delivery.target, payload, qos=self.config.qos, timeout=PUBLISH_TIMEOUT_S
            )
        except aiomqtt.MqttError as error:
            raise RetryableDeliveryError(f"{self.config.url}: {first_line(error, 200)}") from None

    async def close(self) -> None:
        return None
