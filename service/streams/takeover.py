"""Telling a client id shared by two connections from ordinary disconnects: pure, clock passed in.

An MQTT broker allows one connection per client id: when a second one
connects, it closes the first (MQTT 3.1.1 without a word; MQTT 5 with
"session taken over"). Two instances configured alike then take the id from
each other for ever, each a moment after the other reconnects, and each sees
a random part of the ticks. What gives it away is the rhythm: connections the
broker ends within seconds of accepting them, again and again. A broker that
restarts, or a link that drops, ends one connection, or refuses the next.
"""

from __future__ import annotations

# A connection ended within this many seconds of its CONNACK is short ...
TAKEOVER_WINDOW_S = 5.0
# ... and this many short ones in a row, with no failed attempt between, are a takeover.
TAKEOVER_LIMIT = 3


class TakeoverWatch:
    """Feed it each connection's start and end (monotonic seconds); it says when to stop."""

    def __init__(self, *, window_s: float = TAKEOVER_WINDOW_S, limit: int = TAKEOVER_LIMIT) -> None:
        self.window_s = window_s
        self.limit = limit
        self.short = 0  # short connections in a row
        self._since: float | None = None

    def connected(self, now: float) -> None:
        """The broker accepted a connection (CONNACK)."""
        self._since = now

    def ended(self, now: float) -> bool:
        """A connection attempt ended; whether connections are being taken over."""
        since, self._since = self._since, None
        if since is not None and now - since < self.window_s:
            self.short += 1
        else:
            self.short = 0  # a long connection, or an attempt that never connected
        return self.short >= self.limit

    def holding(self, now: float) -> bool:
        """Whether the current connection has lasted past the window: no takeover now."""
        return self._since is not None and now - self._since >= self.window_s
