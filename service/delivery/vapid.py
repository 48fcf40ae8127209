"""The VAPID key pair of browser Web Push: the public half, as browsers take it."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid


def vapid_public_key(private_key: str) -> str | None:
    """The browser's ``applicationServerKey`` for ``private_key`` (``None`` if it is unusable)."""
    try:
        vapid = Vapid.from_string(private_key=private_key)
    except Exception:  # py_vapid raises a variety of errors for a bad key
        return None
    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
