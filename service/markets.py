"""The ``[markets]`` table: which exchange calendar each symbol trades on, and its hours.

Rules with ``session = "regular"`` or ``"extended"`` and the stale-feed watch
read a symbol's hours as a :class:`~service.rules.sessions.Market`, built once
at start-up from ``exchange_calendars`` (holidays and early closes included)
for the calendar's whole range (about twenty years back, one ahead).
``"24/7"`` (crypto) is always open, and is every symbol's market unless the
config says otherwise.

Extended hours are the regular session plus the pre- and after-market of US
equities (04:00 to 20:00 New York time, to 17:00 on early-close days) for
the US calendars; elsewhere they are the regular hours.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.config_table import Table, show_value
from service.rules.sessions import Hours, Market
from service.symbols import normalize_symbol

ALWAYS_OPEN = "24/7"
_US = frozenset({"XNYS", "XNAS", "XASE", "ARCX", "BATS", "IEPA"})
_NEW_YORK = ZoneInfo("America/New_York")
_PRE_MARKET = time(4, 0)
_AFTER_MARKET = time(20, 0)
_EARLY_AFTER_MARKET = time(17, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketsConfig:
    """The calendar of each symbol: ``calendar`` unless a group names it."""

    calendar: str = ALWAYS_OPEN
    # The stale-feed watch counts a symbol's quiet time only within these hours.
    stale_session: str = "regular"
    groups: Mapping[str, str] = field(default_factory=dict)  # symbol -> calendar

    def calendar_of(self, symbol: str) -> str:
        return self.groups.get(symbol, self.calendar)


def read_markets(table: Table) -> MarketsConfig:
    table.reads(MarketsConfig)
    calendar = table.convert("calendar", _calendar_name)
    stale_session = table.choice("stale_session", ("regular", "extended", "any"))
    groups: dict[str, str] = {}
    for group in table.tables("groups"):
        name = group.convert("calendar", _calendar_name)
        for index, symbol in enumerate(group.strings("symbols")):
            try:
                normal = normalize_symbol(symbol)
            except ValueError as error:
                group.problem(f"symbols[{index}]", str(error))
                continue
            if normal in groups:
                group.problem(
                    f"symbols[{index}]",
                    f"{show_value(normal)} is already in a group ({groups[normal]})",
                )
            groups[normal] = name
        group.finish()
    table.finish()
    return MarketsConfig(calendar=calendar, stale_session=stale_session, groups=groups)


def _calendar_name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f'expected a calendar name such as "XNYS" or "24/7", got {show_value(value)}'
        )
    if value == ALWAYS_OPEN:
        return value
    if value not in _calendar_names():
        raise ValueError(
            f"unknown exchange calendar {show_value(value)}: use an exchange_calendars name "
            '(XNYS, XNAS, XLON, ...) or "24/7"'
        )
    return value


@functools.cache
def _calendar_names() -> frozenset[str]:
    import exchange_calendars

    return frozenset(exchange_calendars.get_calendar_names(include_aliases=True))


def market_of(config: MarketsConfig) -> Callable[[str], Market]:
    """Each symbol's market: calendars are read once, on first use."""

    @functools.cache
    def by_name(name: str) -> Market:
        return Market.always_open() if name == ALWAYS_OPEN else load_market(name)

    return lambda symbol: by_name(config.calendar_of(symbol))


def load_market(name: str) -> Market:
    """The regular and extended hours of the exchange calendar ``name``."""
    import exchange_calendars

    with warnings.catch_warnings():
        # exchange_calendars 4.13 uses pandas APIs that pandas 3.1 deprecates (Pandas4Warning).
        warnings.simplefilter("ignore", DeprecationWarning)
        calendar = exchange_calendars.get_calendar(name)
        schedule = calendar.schedule
        opens = [moment.value for moment in schedule["open"]]
        closes = [moment.value for moment in schedule["close"]]
    regular = list(zip(opens, closes, strict=True))
    if name not in _US:
        hours = Hours(regular)
        return Market(name, hours, hours)
    extended = []
    regular_close = calendar.close_times[0][1]
    for day, (open_ns, close_ns) in zip(schedule.index, regular, strict=True):
        date = day.date()
        early = datetime.fromtimestamp(close_ns / 1e9, _NEW_YORK).time() < regular_close
        after = _EARLY_AFTER_MARKET if early else _AFTER_MARKET
        start = _ns(datetime.combine(date, _PRE_MARKET, _NEW_YORK))
        end = _ns(datetime.combine(date, after, _NEW_YORK))
        extended.append((min(start, open_ns), max(end, close_ns)))
    return Market(name, Hours(regular), Hours(extended))


def _ns(moment: datetime) -> int:
    return (
        (moment - datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))) // timedelta(microseconds=1) * 1000
    )
