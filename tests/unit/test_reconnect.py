"""Staying connected: the reconnect loop, and a link's state and log lines (one per change)."""

from __future__ import annotations

import pytest
import structlog

from service.reconnect import Link, reconnecting


def link() -> Link:
    return Link(source="broker", url="mqtt://b:1883", prefix="mqtt", initial_s=0.5, maximum_s=4)


def test_never_connected_warns_once_then_retries_quietly_with_growing_waits() -> None:
    state = link()
    with structlog.testing.capture_logs() as logs:
        delays = [state.down("connection refused") for _ in range(6)]
    assert [e["event"] for e in logs] == ["mqtt_unreachable"] + ["mqtt_retry"] * 5
    assert logs[0]["log_level"] == "warning"
    assert "up to 4 s" in logs[0]["hint"]
    assert [e["attempt"] for e in logs[1:]] == [2, 3, 4, 5, 6]
    assert all(0.25 <= d <= 4 for d in delays)
    assert delays[-1] >= 2  # capped at 4, drawn from its upper half
    assert not state.connected


def test_a_lost_connection_warns_once_and_backoff_starts_again() -> None:
    state = link()
    state.down("refused")
    state.down("refused")
    with structlog.testing.capture_logs() as logs:
        state.up(qos=1)
        delay = state.down("connection reset")
        state.down("refused")
        state.up(qos=1)
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("mqtt_connected", "info"),
        ("mqtt_disconnected", "warning"),
        ("mqtt_retry", "debug"),
        ("mqtt_connected", "info"),
    ]
    assert [e["reconnect"] for e in logs if e["event"] == "mqtt_connected"] == [False, True]
    assert logs[0]["qos"] == 1
    assert delay <= 0.5  # the first retry after a connection waits the initial delay at most
    assert (state.connected, state.connections) == (True, 2)


class RefusedError(Exception):
    pass


async def test_reconnecting_runs_a_new_session_after_each_failure_with_the_backoff() -> None:
    link = Link(source="s", url="mqtt://b", prefix="mqtt", initial_s=1.0, maximum_s=4.0)
    waits: list[float] = []
    sessions = 0

    async def session() -> None:
        nonlocal sessions
        sessions += 1
        if sessions == 3:
            link.up()
            raise ExceptionGroup("the session's tasks", [RefusedError("dropped")])
        if sessions == 4:
            raise KeyError("a bug")
        raise RefusedError("no broker")

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(KeyError), structlog.testing.capture_logs() as logs:
        await reconnecting(link, session, retry_on=(RefusedError,), sleep=sleep)
    assert sessions == 4
    # 1st retry within (0.5, 1], 2nd within (1, 2]; after a connection, from the start again.
    assert 0.5 <= waits[0] <= 1.0
    assert 1.0 <= waits[1] <= 2.0
    assert 0.5 <= waits[2] <= 1.0
    events = [line["event"] for line in logs]
    assert events == ["mqtt_unreachable", "mqtt_retry", "mqtt_connected", "mqtt_disconnected"]
    assert logs[-1]["error"] == "dropped"


async def test_reconnecting_lets_the_caller_set_the_wait() -> None:
    link = Link(source="s", url="mqtt://b", prefix="mqtt", initial_s=1.0, maximum_s=4.0)
    seen: list[tuple[str, float]] = []
    attempts = 0

    async def session() -> None:
        nonlocal attempts
        attempts += 1
        if attempts > 2:
            raise KeyError("stop")
        raise RefusedError("taken over")

    def delay_after(error: str, delay: float) -> float:
        seen.append((error, delay))
        return 60.0

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(KeyError):
        await reconnecting(
            link, session, retry_on=(RefusedError,), delay_after=delay_after, sleep=sleep
        )
    assert [error for error, _ in seen] == ["taken over", "taken over"]
    assert waits == [60.0, 60.0]
