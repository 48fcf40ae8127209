"""A browser's side of Web Push: its keys, and what it decrypts of a push."""

from __future__ import annotations

import base64
import json
import os

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid01

from service.journal.records import WebPushSubscription


class Browser:
    """A browser's push subscription: its keys decrypt what the push service is sent."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = WebPushSubscription(
            endpoint=endpoint, p256dh=b64(public), auth=b64(self.auth)
        )

    def decrypt(self, body: bytes) -> dict[str, object]:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        result: dict[str, object] = json.loads(plain)
        return result


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def vapid_key() -> str:
    vapid = Vapid01()
    vapid.generate_keys()
    return b64(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))
