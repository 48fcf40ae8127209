"""Per-client rate limits: a token bucket per IP address, pure and clock-injected."""

from __future__ import annotations

from collections import OrderedDict

# Clients remembered at once; the least recently seen is forgotten first, so a
# flood of addresses costs bounded memory (and a forgotten client starts full).
MAX_CLIENTS = 10_000


class RateLimiter:
    """``burst`` requests at once, refilled at ``per_minute`` a minute, per key."""

    def __init__(self, *, per_minute: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is free."""
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
