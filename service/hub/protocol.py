"""The hub's wire protocol: what a dashboard may send, and how frames are encoded.

A client sends one kind of message, ``subscribe`` (docs/protocol.md)::

    {"op": "subscribe", "symbols": ["IWM"], "ticks": true, "since": "<alert id>"}

:func:`parse_subscribe` is pure: a message in, its request out, or a
:class:`ClientMessageError` saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from service.errors import RequestError
from service.symbols import normalize_symbol
from service.text import first_line, quote

MAX_SYMBOLS = 256
MAX_ALERT_ID_CHARS = 64


class ClientMessageError(RequestError):
    """A client sent something the protocol does not allow; the message says what."""


def parse_subscribe(text: str | bytes) -> tuple[frozenset[str] | None, bool, str | None]:
    """A subscribe message → (symbols, ticks, since); ``None`` symbols means all.

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
    unknown = sorted(set(message) - {"op", "symbols", "ticks", "since"})
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


def _rest(
    message: dict[str, Any], symbols: frozenset[str] | None
) -> tuple[frozenset[str] | None, bool, str | None]:
    ticks = message.get("ticks", False)
    if not isinstance(ticks, bool):
        raise ClientMessageError("ticks: expected true or false")
    since = message.get("since")
    if since is not None and (
        not isinstance(since, str) or not 0 < len(since) <= MAX_ALERT_ID_CHARS
    ):
        raise ClientMessageError("since: expected the id of the last alert you received")
    return symbols, ticks, since


def encode(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()
