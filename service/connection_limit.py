"""How many connections each client address holds, against a cap: pure bookkeeping.

A server that takes connections from the internet must not let one address
hold all its sockets (40 connections sending a header byte a second keep a
server with no limits busy for ever). Both servers of the service, HTTP and
the websocket hub, count here at accept time, before a byte is parsed.
"""

from __future__ import annotations

from collections import Counter


class ConnectionLimit:
    """At most ``per_client`` open connections per address (0: no limit)."""

    def __init__(self, per_client: int) -> None:
        if per_client < 0:
            raise ValueError(f"per_client must be 0 (no limit) or more, got {per_client}")
        self.per_client = per_client
        self.open: Counter[str] = Counter()
        self.refused = 0

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; ``False``, counting nothing, past the cap."""
        if self.per_client and self.open[address] >= self.per_client:
            self.refused += 1
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        """A connection :meth:`admit` let in has closed."""
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


def peer_address(peername: object) -> str:
    """The address part of a transport's ``peername`` (``"?"`` when there is none)."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return "?"
