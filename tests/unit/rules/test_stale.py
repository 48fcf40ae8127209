from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.rules.stale import StaleFeedWatch
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
