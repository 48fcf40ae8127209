"""Untrusted tick fields → :class:`~service.models.Tick`, or a :class:`~service.errors.TickError`.

Every source (replay files, MQTT, websocket feeds) funnels its input through
:func:`make_tick`, so a tick means the same thing whatever brought it. These
functions are pure; rejections carry a stable ``reason`` for counting.

Rejection reasons: ``missing_symbol``, ``bad_symbol``, ``missing_price``,
``bad_price``, ``price_not_finite``, ``price_not_positive``,
``price_out_of_range``, ``missing_ts``, ``bad_ts``, ``bad_volume``,
``bad_bid``, ``bad_ask``, ``not_an_object``; the message sources add
``not_json``, ``payload_too_large`` and ``future_ts`` (see
:func:`check_not_ahead`), the engine ``out_of_order``, ``same_time`` and
``price_implausible``.

A price (bid, ask) is at most :data:`MAX_PRICE` and a volume at most
:data:`MAX_VOLUME`: no instrument trades near either, and numbers past them
(1e308) only ever come from a broken feed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from service.errors import TickError
from service.models import Tick, format_price
from service.symbols import normalize_symbol
from service.text import SHOWN_CHARS, first_line, quote
from service.timestamps import NS_PER_SECOND, format_timestamp, parse_timestamp

MAX_PRICE = 1e12
MAX_VOLUME = 1e15

REJECTION_REASONS = (
    "not_an_object",
    "missing_symbol",
    "bad_symbol",
    "missing_price",
    "bad_price",
    "price_not_finite",
    "price_not_positive",
    "price_out_of_range",
    "missing_ts",
    "bad_ts",
    "bad_volume",
    "bad_bid",
    "bad_ask",
    "not_json",
    "payload_too_large",
    "future_ts",
    "out_of_order",
    "same_time",
    "price_implausible",
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
    if checked_price > MAX_PRICE:
        raise TickError(
            "price_out_of_range",
            f"{checked_symbol} price {format_price(checked_price)} is over {MAX_PRICE:g}",
        )
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
        volume=_optional(volume, "volume", allow_zero=True, maximum=MAX_VOLUME),
        bid=_optional(bid, "bid", allow_zero=False, maximum=MAX_PRICE),
        ask=_optional(ask, "ask", allow_zero=False, maximum=MAX_PRICE),
    )


def check_not_ahead(tick: Tick, *, received_ns: int, max_ahead_ns: int) -> Tick:
    """``tick``, unless its time is more than ``max_ahead_ns`` after ``received_ns``.

    A tick from the future would make every later tick of its symbol older than
    it, and so rejected, until the clock caught up. Live sources call this with
    the time they read the tick; a replay has no such clock.
    """
    ahead_ns = tick.ts_ns - received_ns
    if ahead_ns > max_ahead_ns:
        raise TickError(
            "future_ts",
            f"{tick.symbol} tick at {format_timestamp(tick.ts_ns)} is "
            f"{ahead_ns / NS_PER_SECOND:,.1f} s ahead of this service's clock "
            f"(max_future_seconds = {max_ahead_ns / NS_PER_SECOND:g}): check the feed's clock",
        )
    return tick


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


def _optional(value: object, name: str, *, allow_zero: bool, maximum: float) -> float | None:
    if value is None or value == "":
        return None
    number = _number(value, name, f"bad_{name}")
    if (
        not math.isfinite(number)
        or number < 0
        or (number == 0 and not allow_zero)
        or number > maximum
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise TickError(
            f"bad_{name}",
            f"{name} must be a number {bound} and at most {maximum:g}, got {_show(value)}",
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
