from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.config import parse_config
from service.markets import MarketsConfig, market_of
from service.rules.sessions import Hours
from service.rules.stale import StaleFeedWatch
from service.timestamps import parse_timestamp
from tests.builders import tick

S = 1_000_000_000


def test_a_quiet_symbol_fires_once_and_a_fresh_tick_clears_it() -> None:
    watch = StaleFeedWatch(10, now_ns=0)
    watch.observe([tick(260.0)], 0)
    assert watch.check(9 * S) == []
    (alert,) = watch.check(10 * S)
    assert (alert.kind, alert.symbol, alert.price, alert.level) == ("stale_feed", "IWM", 260.0, 10)
    assert alert.headline() == "IWM feed stale: no tick for 10 s (last 260.00)"
    assert watch.check(60 * S) == []  # once per quiet spell
    assert watch.observe([tick(261.0)], 61 * S) == ["IWM"]
    assert watch.check(70 * S) == []
    assert [a.price for a in watch.check(71 * S)] == [261.0]


def test_a_watched_symbol_that_never_ticks_goes_stale_from_start_up() -> None:
    watch = StaleFeedWatch(5, symbols=["SPX"], now_ns=100 * S)
    (alert,) = watch.check(105 * S)
    assert alert.headline() == "SPX feed stale: no tick for 5 s (none since start-up)"


def test_zero_only_keeps_ages() -> None:
    watch = StaleFeedWatch(0, now_ns=0)
    watch.observe([tick(1.0)], 0)
    assert watch.check(10**6 * S) == []
    assert watch.ages(3 * S) == {"IWM": 3.0}


@given(events=st.lists(st.tuples(st.booleans(), st.integers(0, 20 * S)), max_size=50))
def test_alerts_alternate_with_fresh_ticks(events: list[tuple[bool, int]]) -> None:
    """Between two alerts for a symbol there is always a tick: one alert per quiet spell."""
    watch = StaleFeedWatch(3, now_ns=0)
    now = 0
    fired_since_tick = 0
    for is_tick, gap in events:
        now += gap
        if is_tick:
            watch.observe([tick(100.0)], now)
            fired_since_tick = 0
        else:
            fired_since_tick += len(watch.check(now))
            assert fired_since_tick <= 1


# --- market hours: quiet time counts only while the symbol's market is open ------------


def nyse_and_crypto() -> MarketsConfig:
    config = parse_config(
        '[markets]\ncalendar = "XNYS"\n[[markets.groups]]\ncalendar = "24/7"\n'
        'symbols = ["BTC-USD"]\n'
    )
    return config.markets


def stale_in_session(now: str) -> list[str]:
    """The symbols stale at ``now``, when IWM and BTC-USD last ticked at Friday's early close."""
    markets = market_of(nyse_and_crypto())
    watch = StaleFeedWatch(
        120,
        now_ns=parse_timestamp("2026-11-27T17:00:00Z"),
        hours_of=lambda symbol: markets(symbol).hours("regular"),
    )
    # The Friday after Thanksgiving: the NYSE closes early, at 13:00 New York (18:00 UTC).
    last = parse_timestamp("2026-11-27T17:59:00Z")
    watch.observe([tick(255.0, symbol="IWM"), tick(90_000.0, symbol="BTC-USD")], last)
    return sorted(alert.symbol for alert in watch.check(parse_timestamp(now)))


def test_a_stock_quiet_after_the_close_is_not_stale_but_a_crypto_feed_is() -> None:
    assert stale_in_session("2026-11-27T17:59:59Z") == []
    assert stale_in_session("2026-11-27T18:30:00Z") == ["BTC-USD"]  # IWM: 1 min in session


def test_a_stock_quiet_over_the_weekend_is_not_stale_until_time_in_session_adds_up() -> None:
    assert stale_in_session("2026-11-28T15:00:00Z") == ["BTC-USD"]  # Saturday
    assert stale_in_session("2026-11-30T14:30:59Z") == ["BTC-USD"]  # Monday, 1 min + 59 s
    assert stale_in_session("2026-11-30T14:31:00Z") == ["BTC-USD", "IWM"]  # 1 + 1 min: 120 s


def test_without_market_hours_quiet_time_is_wall_time() -> None:
    watch = StaleFeedWatch(120, now_ns=parse_timestamp("2026-11-27T17:00:00Z"))
    watch.observe([tick(255.0)], parse_timestamp("2026-11-27T17:59:00Z"))
    assert [a.symbol for a in watch.check(parse_timestamp("2026-11-27T18:01:00Z"))] == ["IWM"]


@given(
    intervals=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 500)), max_size=12),
    start=st.integers(-100, 12_000),
    length=st.integers(0, 12_000),
)
def test_hours_open_time_is_the_measure_of_the_overlap(
    intervals: list[tuple[int, int]], start: int, length: int
) -> None:
    spans: list[tuple[int, int]] = []
    for begin, size in sorted(intervals):
        if spans and begin < spans[-1][1]:
            continue  # keep them disjoint
        spans.append((begin, begin + size))
    hours = Hours(spans)
    end = start + length
    expected = sum(max(0, min(end, b) - max(start, a)) for a, b in spans)
    assert hours.open_time(start, end) == expected
    for instant in (start, end, *(a for a, _ in spans), *(b for _, b in spans)):
        assert hours.contains(instant) == any(a <= instant < b for a, b in spans)
