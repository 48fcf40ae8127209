"""Webhooks: a POST of the ALERT JSON, signed with the subscriber's secret (aiohttp).

``X-Strykr-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes; a receiver recomputes it with the shared secret and compares in
constant time. ``X-Strykr-Alert-Id`` lets it drop a repeat: a delivery whose
reply was lost is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp

from service.delivery.destinations import redact_url
from service.delivery.http import HttpSession
from service.delivery.outcomes import delivery_error, http_outcome
from service.delivery.settings import WebhookConfig
from service.errors import PermanentDeliveryError, RetryableDeliveryError
from service.journal.records import Channel, Delivery, Subscriber
from service.text import first_line

SIGNATURE_HEADER = "X-Strykr-Signature"


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Strykr-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    name: Channel = "webhook"

    def __init__(self, config: WebhookConfig, *, concurrency: int) -> None:
        self.config = config
        self.concurrency = concurrency
        self._http = HttpSession(config.timeout_seconds)

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None:
        assert subscriber is not None
        if not subscriber.webhook_secret:
            raise PermanentDeliveryError("the subscriber has no webhook secret")
        body = json.dumps(delivery.alert, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_body(subscriber.webhook_secret, body),
            "X-Strykr-Alert-Id": delivery.alert_id,
            "User-Agent": "strykr-alerts",
        }
        where = redact_url(delivery.target)
        try:
            async with self._http.get().post(
                delivery.target, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise RetryableDeliveryError(
                f"{where}: {first_line(error, 200) or type(error).__name__}"
            ) from None
        if http_outcome(status) != "sent":
            raise delivery_error(http_outcome(status), f"{where}: HTTP {status}")

    async def close(self) -> None:
        await self._http.close()
