"""Signed tokens for links in mail (unsubscribe, confirm, manage): no login, no guessing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

# Purposes: a token signed for one is worthless for another.
UNSUBSCRIBE = "unsubscribe"
CONFIRM = "confirm"
MANAGE = "manage"
# 128 bits of HMAC-SHA256: enough against guessing, short enough for a URL.
MAC_BYTES = 16


def sign_token(secret: bytes, purpose: str, subject: str) -> str:
    """A URL-safe token that proves ``subject`` (a subscriber id) was given ``purpose`` by us."""
    return f"{_b64(subject.encode())}.{_b64(_mac(secret, purpose, subject))}"


def verify_token(secret: bytes, purpose: str, token: str) -> str | None:
    """The subject of ``token`` if we signed it for ``purpose``; ``None`` otherwise."""
    payload, _, mac = token.partition(".")
    try:
        subject = _unb64(payload).decode()
        expected = _unb64(mac)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not subject or not hmac.compare_digest(expected, _mac(secret, purpose, subject)):
        return None
    return subject


def _mac(secret: bytes, purpose: str, subject: str) -> bytes:
    message = f"{purpose}\x1f{subject}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
