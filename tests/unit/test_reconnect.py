"""A reconnecting source's state and log lines: one line per change, backoff between tries."""

from __future__ import annotations

import structlog

from service.reconnect import Link


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
