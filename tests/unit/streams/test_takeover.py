"""Telling a shared client id from ordinary disconnects, with the clock passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.streams.takeover import TAKEOVER_LIMIT, TAKEOVER_WINDOW_S, TakeoverWatch


def test_takeover_after_the_limit_of_short_connections_in_a_row() -> None:
    watch = TakeoverWatch(window_s=5.0, limit=3)
    verdicts = []
    for start in (0.0, 1.0, 2.0):
        watch.connected(start)
        verdicts.append(watch.ended(start + 0.3))
    assert verdicts == [False, False, True]


def test_takeover_a_long_connection_starts_the_count_again() -> None:
    watch = TakeoverWatch(window_s=5.0, limit=3)
    for start, end in ((0.0, 0.3), (1.0, 1.3), (2.0, 60.0), (61.0, 61.3), (62.0, 62.3)):
        watch.connected(start)
        assert not watch.ended(end)


def test_takeover_an_attempt_that_never_connected_starts_the_count_again() -> None:
    watch = TakeoverWatch(window_s=5.0, limit=3)
    for start in (0.0, 1.0):
        watch.connected(start)
        watch.ended(start + 0.2)
    assert not watch.ended(3.0)  # a refused connect: the broker restarting, not a takeover
    watch.connected(4.0)
    assert not watch.ended(4.2)


def test_takeover_holding_once_the_connection_outlasts_the_window() -> None:
    watch = TakeoverWatch(window_s=5.0, limit=3)
    assert not watch.holding(0.0)
    watch.connected(10.0)
    assert not watch.holding(14.9)
    assert watch.holding(15.0)
    watch.ended(16.0)
    assert not watch.holding(16.0)


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 100)), max_size=40))
def test_takeover_is_reported_exactly_when_the_last_connections_were_all_short(
    attempts: list[tuple[bool, float]],
) -> None:
    watch = TakeoverWatch()
    now = 0.0
    history: list[bool] = []  # per attempt: a short connection?
    for connects, lasted in attempts:
        if connects:
            watch.connected(now)
        now += lasted
        verdict = watch.ended(now)
        history.append(connects and lasted < TAKEOVER_WINDOW_S)
        recent = history[-TAKEOVER_LIMIT:]
        assert verdict == (len(recent) == TAKEOVER_LIMIT and all(recent))
        now += 0.1
