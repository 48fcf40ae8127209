"""Reading ticks out of a feed's own JSON messages, by a :class:`~service.config.FieldMap`.

A vendor's message such as ``{"e": "trade", "s": "BTC", "p": "92500.1", "T":
1770042614000}`` becomes a tick with ``fields = { symbol = "s", price = "p",
ts = "T" }`` and ``match = { e = "trade" }``. Pure functions: the websocket
source only decodes the frame and calls :func:`ticks_from_message`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.errors import TickError
from service.models import Tick
from service.streams.decode import make_tick
from service.streams.settings import FieldMap

_ABSENT = object()


def lookup(message: object, path: str) -> object:
    """The value at dotted ``path`` (``data.0.p``) in ``message``, or ``None`` if absent."""
    value = _lookup(message, path)
    return None if value is _ABSENT else value


def _lookup(message: object, path: str) -> object:
    value = message
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _ABSENT)
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else _ABSENT
        else:
            return _ABSENT
        if value is _ABSENT:
            return _ABSENT
    return value


def matches(message: object, fields: FieldMap) -> bool:
    """Whether ``message`` is a tick message at all (has every ``match`` value)."""
    return all(_same(_lookup(message, path), expected) for path, expected in fields.match)


def _same(found: object, expected: object) -> bool:
    # 1 == True in Python; a feed's flag and a count must not match each other.
    if isinstance(found, bool) or isinstance(expected, bool):
        return found is expected
    return found == expected


def ticks_from_message(message: object, fields: FieldMap) -> list[Tick | TickError]:
    """Every tick in one decoded message, or the error that rejects it.

    Messages that do not :func:`match` give no ticks and no errors: they are
    the feed's other traffic (subscription replies, heartbeats).
    """
    if not matches(message, fields):
        return []
    if fields.items is None:
        items: Sequence[object] = [message]
    else:
        found = _lookup(message, fields.items)
        if isinstance(found, Mapping):
            items = [found]
        elif isinstance(found, Sequence) and not isinstance(found, str | bytes):
            items = found
        else:
            return [TickError("not_an_object", f"no list of ticks at {fields.items}")]
    results: list[Tick | TickError] = []
    for item in items:
        if not isinstance(item, Mapping):
            results.append(
                TickError("not_an_object", f"expected an object, got {type(item).__name__}")
            )
            continue
        symbol = lookup(item, fields.symbol)
        if symbol is None:
            symbol = fields.fixed_symbol
        try:
            results.append(
                make_tick(
                    symbol=symbol,
                    price=lookup(item, fields.price),
                    ts=lookup(item, fields.ts),
                    volume=None if fields.volume is None else lookup(item, fields.volume),
                )
            )
        except TickError as error:
            results.append(error)
    return results
