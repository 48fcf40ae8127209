"""Untrusted tick fields → :class:`~service.models.Tick`, or a :class:`~service.errors.TickError`.

Every source (replay files, MQTT, websocket feeds) funnels its input through
:func:`make_tick`, so a tick means the same thing whatever brought it. These
functions are pure; rejections carry a stable ``reason`` for counting.

Rejection reasons: ``missing_symbol``, ``bad_symbol``, ``missing_price``,
``bad_price``, ``price_not_finite``, ``price_not_positive``, ``missing_ts``,
``bad_ts``, ``bad_volume``, ``bad_bid``, ``bad_ask``, ``not_an_object``; the
message sources add ``not_json`` and ``payload_too_large``, the engine
``out_of_order``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from service.errors import TickError
from service.models import Tick
from service.symbols import normalize_symbol
from service.text import SHOWN_CHARS, first_line, quote
from service.timestamps import parse_timestamp

REJECTION_REASONS = (
    "not_an_object",
    "missing_symbol",
    "bad_symbol",
    "missing_price",
    "bad_price",
    "price_not_finite",
    "price_not_positive",
    "missing_ts",
    "bad_ts",
    "bad_volume",
    "bad_bid",
    "bad_ask",
    "not_json",
    "payload_too_large",
    "out_of_order",
)


def decode_json(data: str | bytes | bytearray, *, what: str) -> object:
    """One message's JSON, or a ``not_json`` :class:`TickError` saying why it is not."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        # RecursionError: nesting deeper than the parser goes, e.g. "[[[[…".
        raise TickError("not_json", f"{what} is not JSON ({first_line(error, 120)})") from None


def parse_tick(raw: object, *, default_symbol: str | None = None) -> Tick:
    """Validate a decoded message (a mapping with ``symbol``, ``price``, ``ts``…).

    ``default_symbol`` is used when the message has none (an MQTT topic such as
    ``ticks/IWM`` names it).
    """
    if not isinstance(raw, Mapping):
        raise TickError("not_an_object", f"expected an object, got {type(raw).__name__}")
    return make_tick(
        symbol=raw.get("symbol", default_symbol),
        price=raw.get("price"),
        ts=raw.get("ts"),
        volume=raw.get("volume"),
        bid=raw.get("bid"),
        ask=raw.get("ask"),
    )


def make_tick(
    *,
    symbol: object,
    price: object,
    ts: object,
    volume: object = None,
    bid: object = None,
    ask: object = None,
) -> Tick:
    """Validate one tick's fields; raise :class:`TickError` naming the first bad one."""
    if symbol is None or symbol == "":
        raise TickError("missing_symbol", "the tick has no symbol")
    try:
        checked_symbol = normalize_symbol(symbol)
    except ValueError as error:
        raise TickError("bad_symbol", str(error)) from None
    if price is None or price == "":
        raise TickError("missing_price", f"{checked_symbol} tick has no price")
    checked_price = _number(price, "price", "bad_price")
    if not math.isfinite(checked_price):
        raise TickError("price_not_finite", f"{checked_symbol} price is {_show(price)}")
    if checked_price <= 0:
        raise TickError("price_not_positive", f"{checked_symbol} price is {_show(price)}")
    if ts is None or ts == "":
        raise TickError("missing_ts", f"{checked_symbol} tick has no time")
    try:
        ts_ns = parse_timestamp(ts)
    except ValueError as error:
        raise TickError("bad_ts", f"{checked_symbol} ts: {error}") from None
    return Tick(
        symbol=checked_symbol,
        price=checked_price,
        ts_ns=ts_ns,
        volume=_optional(volume, "volume", allow_zero=True),
        bid=_optional(bid, "bid", allow_zero=False),
        ask=_optional(ask, "ask", allow_zero=False),
    )


def _number(value: object, name: str, reason: str) -> float:
    if isinstance(value, bool):
        raise TickError(reason, f"{name} must be a number, got {value}")
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf  # rejected as not finite by the caller
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        raise TickError(reason, f"{name} must be a number, got {_show(value)}")
    raise TickError(reason, f"{name} must be a number, got {type(value).__name__}")


def _optional(value: object, name: str, *, allow_zero: bool) -> float | None:
    if value is None or value == "":
        return None
    number = _number(value, name, f"bad_{name}")
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TickError(
            f"bad_{name}", f"{name} must be a finite number {bound}, got {_show(value)}"
        )
    return number


def _show(value: object) -> str:
    """A found value for a message, cut short: payloads can be megabytes."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"  # repr() refuses past 4,300 digits
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
