"""The hub's wire protocol: what a dashboard may send, and how frames are encoded.

A client sends one kind of message, ``subscribe`` (docs/protocol.md)::

    {"op": "subscribe", "symbols": ["IWM"], "ticks": true, "since": "<alert id>",
     "manage": "<the token of the subscriber's manage link>"}

With ``manage``, the subscriber's own rules and alerts come too; without it,
only what is for everyone.

:func:`parse_subscribe` is pure: a message in, its request out, or a
:class:`ClientMessageError` saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from service.errors import RequestError
from service.symbols import normalize_symbol
from service.text import first_line, quote

MAX_SYMBOLS = 256
MAX_ALERT_ID_CHARS = 64
MAX_TOKEN_CHARS = 512


class Subscription(NamedTuple):
    """What a subscribe message asks for; ``symbols`` ``None`` means all."""

    symbols: frozenset[str] | None
    ticks: bool
    since: str | None
    manage: str | None = None


class ClientMessageError(RequestError):
    """A client sent something the protocol does not allow; the message says what."""


def parse_subscribe(text: str | bytes) -> Subscription:
    """A subscribe message → what it asks for.

    Raises :class:`ClientMessageError` saying what is wrong.
    """
    if isinstance(text, bytes):
        raise ClientMessageError("send JSON text frames, not binary ones")
    try:
        message = json.loads(text)
    except ValueError as error:
        raise ClientMessageError(f"not JSON: {first_line(error, 100)}") from None
    if not isinstance(message, dict):
        raise ClientMessageError('expected a JSON object such as {"op": "subscribe", ...}')
    op = message.get("op")
    if op != "subscribe":
        shown = quote(op) if isinstance(op, str) else json.dumps(op)
        raise ClientMessageError(f'unknown op {shown}; the only op is "subscribe"')
    unknown = sorted(set(message) - {"op", "symbols", "ticks", "since", "manage"})
    if unknown:
        raise ClientMessageError(f"unknown key {quote(unknown[0])} in subscribe")
    symbols = message.get("symbols")
    if not isinstance(symbols, list) or not symbols or len(symbols) > MAX_SYMBOLS:
        raise ClientMessageError(
            f'symbols: expected a list of 1 to {MAX_SYMBOLS} symbols, or ["*"] for all'
        )
    wanted: set[str] = set()
    for item in symbols:
        if item == "*":
            return _rest(message, None)
        try:
            wanted.add(normalize_symbol(item))
        except ValueError as error:
            raise ClientMessageError(f"symbols: {error}") from None
    return _rest(message, frozenset(wanted))


def _rest(message: dict[str, Any], symbols: frozenset[str] | None) -> Subscription:
    ticks = message.get("ticks", False)
    if not isinstance(ticks, bool):
        raise ClientMessageError("ticks: expected true or false")
    since = message.get("since")
    if since is not None and (
        not isinstance(since, str) or not 0 < len(since) <= MAX_ALERT_ID_CHARS
    ):
        raise ClientMessageError("since: expected the id of the last alert you received")
    manage = message.get("manage")
    if manage is not None and (
        not isinstance(manage, str) or not 0 < len(manage) <= MAX_TOKEN_CHARS
    ):
        raise ClientMessageError("manage: expected the token of your manage link")
    return Subscription(symbols, ticks, since, manage)


def encode(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()
