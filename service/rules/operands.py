"""Reading the indicators a rule names in alerts.toml: ``sma(20, "5m")``, ``vwap("30m")``.

Pure text in, typed values out; every mistake raises ``ValueError`` with a
message that says what was expected, for the config reader to put behind the
key's path.
"""

from __future__ import annotations

import re
from typing import cast

from service.models import BAR_INDICATORS, Indicator, IndicatorName, VolumeConfirm
from service.text import quote
from service.timestamps import parse_duration

_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$")
_VOLUME = re.compile(r"^\s*(volume\s*\(.*?\))\s*>\s*([0-9.]+)\s*\*\s*(sma_volume\s*\(.*\))\s*$")
_WINDOWED = ("vwap", "high", "low")
FORMS = 'sma(20, "5m"), ema(20, "5m"), rsi(14, "5m"), vwap("30m"), high("30m") or low("30m")'
# An indicator over more bars than this is a mistake, and its state would be large.
MAX_PERIOD = 1_000


def parse_indicator(text: str, *, allowed: tuple[str, ...] | None = None) -> Indicator:
    """``sma(20, "5m")`` as an :class:`Indicator`; quotes around the span are optional."""
    match = _CALL.match(text)
    if match is None:
        raise ValueError(f"expected a number or an indicator such as {FORMS}, got {quote(text)}")
    name, arguments = match.group(1), [a.strip().strip("\"'") for a in match.group(2).split(",")]
    known = allowed or (*sorted(BAR_INDICATORS - {"sma_volume"}), *_WINDOWED)
    if name not in known:
        raise ValueError(f"unknown indicator {quote(name)}: expected one of {', '.join(known)}")
    if name in BAR_INDICATORS:
        if len(arguments) != 2:
            raise ValueError(f'{name} takes a number of bars and a bar: {name}(20, "5m")')
        period_text, span = arguments
        if not period_text.isdigit() or not 1 <= int(period_text) <= MAX_PERIOD:
            raise ValueError(
                f"{name}: expected a number of bars from 1 to {MAX_PERIOD}, "
                f"got {quote(period_text)}"
            )
        period: int | None = int(period_text)
        if name == "rsi" and period == 1:
            raise ValueError("rsi: expected at least 2 bars")
    else:
        if len(arguments) != 1:
            raise ValueError(f'{name} takes one window of ticks: {name}("30m")')
        span, period = arguments[0], None
    parse_duration(span)  # raises with its own message
    return Indicator(name=cast(IndicatorName, name), span=span, period=period)


def parse_volume_confirm(text: str) -> VolumeConfirm:
    """``volume("1m") > 2 * sma_volume(20, "1m")`` as a :class:`VolumeConfirm`."""
    form = 'volume("1m") > 2 * sma_volume(20, "1m")'
    match = _VOLUME.match(text)
    if match is None:
        raise ValueError(f"expected {form}, got {quote(text)}")
    volume = _CALL.match(match.group(1))
    assert volume is not None
    bar = volume.group(2).strip().strip("\"'")
    parse_duration(bar)
    try:
        ratio = float(match.group(2))
    except ValueError:
        raise ValueError(f"expected a number before *, got {quote(match.group(2))}") from None
    if ratio <= 0:
        raise ValueError(f"expected a ratio above 0, got {quote(match.group(2))}")
    average = parse_indicator(match.group(3), allowed=("sma_volume",))
    if average.span != bar:
        raise ValueError(
            f"the volume and its average must be of the same bar, got {bar} and {average.span}"
        )
    assert average.period is not None
    return VolumeConfirm(bar=bar, ratio=ratio, period=average.period)
