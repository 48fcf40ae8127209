"""Timestamps and durations: parsing at the edges, formatting for output.

Inside the service every instant is an ``int`` of nanoseconds since the Unix
epoch (UTC). Integers keep comparisons such as "5 s after the run started"
exact, which floats of seconds do not.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal

from service.text import quote

NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000

# Epoch numbers are told apart by magnitude: seconds stay below 1e11 until the
# year 5138, milliseconds below 1e14, microseconds below 1e17.
_MAX_EPOCH_SECONDS = 10**11
_MAX_EPOCH_MS = 10**14
_MAX_EPOCH_US = 10**17
_MAX_EPOCH_NS = 10**20

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_DURATION_NS = {
    "ms": NS_PER_MS,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
    "d": 86400 * NS_PER_SECOND,
}


def parse_timestamp(value: object) -> int:
    """Return ``value`` as nanoseconds since the epoch, or raise ``ValueError``.

    Accepts an ISO 8601 string (``2026-02-02T14:30:14.000Z``; without an offset
    it is taken as UTC), an aware or naive ``datetime`` (naive means UTC), or
    an epoch number of seconds, milliseconds, microseconds or nanoseconds
    (told apart by magnitude), given as a number or as a numeric string.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a timestamp, got the boolean {value}")
    if isinstance(value, datetime):
        return _datetime_ns(value)
    if isinstance(value, int):
        return _epoch_ns(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite epoch time, got {value}")
        # The shortest repr is what the sender wrote: 1770042614.123 stays .123 exactly.
        return _epoch_ns(Decimal(repr(value)))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("expected a timestamp, got an empty string")
        if _NUMBER.match(text):
            return _epoch_ns(Decimal(text) if any(c in text for c in ".eE") else int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 time or epoch seconds, got {quote(text)}"
            ) from None
        return _datetime_ns(parsed)
    raise ValueError(f"expected a timestamp, got {type(value).__name__}")


def _epoch_ns(number: int | Decimal) -> int:
    if number <= 0:
        raise ValueError(f"expected an epoch time after 1970, got {number}")
    if number < _MAX_EPOCH_SECONDS:
        scale = NS_PER_SECOND
    elif number < _MAX_EPOCH_MS:
        scale = NS_PER_MS
    elif number < _MAX_EPOCH_US:
        scale = 1_000
    elif number < _MAX_EPOCH_NS:
        scale = 1
    else:
        raise ValueError(f"epoch time {number} is out of range")
    ts_ns = int(number * scale)
    if ts_ns <= 0:  # a tiny fraction such as 1e-300 rounds to the epoch itself
        raise ValueError(f"expected an epoch time after 1970, got {number}")
    return ts_ns


def _datetime_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ts_ns = (delta.days * 86400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1_000
    if ts_ns <= 0:
        raise ValueError(f"expected a time after 1970, got {moment.isoformat()}")
    return ts_ns


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_timestamp(ts_ns: int) -> str:
    """Format as ISO 8601 UTC with milliseconds and ``Z``: ``2026-02-02T14:30:14.000Z``."""
    seconds, rest_ns = divmod(ts_ns, NS_PER_SECOND)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rest_ns // NS_PER_MS:03d}Z"


def parse_duration(text: str) -> int:
    """Parse ``"500ms"``, ``"30s"``, ``"1m"``, ``"4h"`` or ``"1d"`` into nanoseconds.

    Raises ``ValueError`` for anything else, including zero.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f'expected a duration such as "30s", "1m" or "1h", got {quote(text)}')
    count = int(match.group(1))
    if count == 0:
        raise ValueError(f"expected a duration longer than zero, got {quote(text)}")
    return count * _DURATION_NS[match.group(2)]


def seconds_to_ns(seconds: float) -> int:
    """Convert a (config) number of seconds to whole nanoseconds."""
    return round(seconds * NS_PER_SECOND)
