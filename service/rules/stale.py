"""The stale-feed rule: a symbol that has had no tick for ``stale_seconds`` fires once.

Pure and clock-free: the caller says what arrived when (:meth:`StaleFeedWatch.observe`)
and asks, now and then, what has gone quiet (:meth:`StaleFeedWatch.check`). Time is
the service's receive time, never the ticks' own timestamps, so a replay at any
speed and a feed with a skewed clock are judged alike. A fresh tick clears the
state; the symbol can then fire again.

With market hours (``hours_of``), only the time the symbol's market is open
counts as quiet: a feed silent overnight, over a weekend or a holiday is not
stale, and one silent from the close counts again from the next open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from service.models import AlertEvent, Tick, alert_id
from service.rules.sessions import Hours

STALE_RULE = "stale_feed"


class StaleFeedWatch:
    """Per symbol: when it last ticked (receive time), its last price, and whether it is stale.

    With ``stale_seconds = 0`` it only keeps the ages (for the metrics) and never fires.
    """

    def __init__(
        self,
        stale_seconds: float,
        *,
        symbols: Iterable[str] = (),
        now_ns: int,
        hours_of: Callable[[str], Hours | None] | None = None,
    ) -> None:
        if stale_seconds < 0:
            raise ValueError("stale_seconds must be 0 (only track ages) or positive")
        self.stale_seconds = stale_seconds
        self._stale_ns = int(stale_seconds * 1e9)
        # Symbols the rules watch count from start-up: one that never ticks goes stale too.
        self._last: dict[str, tuple[int, float | None]] = dict.fromkeys(symbols, (now_ns, None))
        self.stale: set[str] = set()
        self._started_ns = now_ns
        self._hours_of = hours_of

    def observe(self, ticks: Sequence[Tick], now_ns: int) -> list[str]:
        """``ticks`` arrived at ``now_ns``; returns the symbols this clears (no longer stale)."""
        last = self._last
        for tick in ticks:
            last[tick.symbol] = (now_ns, tick.price)
        if not self.stale:
            return []
        cleared = sorted(symbol for symbol in self.stale if last[symbol][0] == now_ns)
        self.stale.difference_update(cleared)
        return cleared

    def watch(self, symbols: Iterable[str], now_ns: int) -> None:
        """Also watch ``symbols`` (new rules), counting from ``now_ns`` for those not yet seen."""
        for symbol in symbols:
            self._last.setdefault(symbol, (now_ns, None))

    def symbols(self) -> list[str]:
        """Every symbol watched: those of the rules and those that ticked."""
        return list(self._last)

    def __len__(self) -> int:
        return len(self._last)

    def state(self, symbol: str) -> list[Any] | None:
        """What it keeps of ``symbol``, for a checkpoint: last seen, last price, stale."""
        seen = self._last.get(symbol)
        if seen is None:
            return None
        return [seen[0], seen[1], symbol in self.stale]

    def restore(self, symbol: str, state: list[Any] | None) -> None:
        """Take back what :meth:`state` gave, counting quiet time from start-up at the earliest.

        A symbol stale before a restart stays stale (its alert is not sent
        again) until it ticks. One that was not counts its quiet time from
        start-up, as a symbol first watched then: the time the service itself
        was down says nothing of the feed.
        """
        if state is None:
            return
        seen_ns, price, stale = state
        self._last[symbol] = (max(seen_ns, self._started_ns), price)
        if stale:
            self.stale.add(symbol)

    def check(self, now_ns: int) -> list[AlertEvent]:
        """One ``stale_feed`` alert per symbol that went quiet since the last check."""
        alerts: list[AlertEvent] = []
        if self._stale_ns <= 0:
            return alerts
        for symbol, (seen_ns, price) in self._last.items():
            if symbol in self.stale or now_ns - seen_ns < self._stale_ns:
                continue
            hours = None if self._hours_of is None else self._hours_of(symbol)
            if hours is not None and hours.open_time(seen_ns, now_ns) < self._stale_ns:
                continue  # quiet, but mostly while its market was closed
            self.stale.add(symbol)
            last_price = 0.0 if price is None else price
            alerts.append(
                AlertEvent(
                    id=alert_id(
                        rule=STALE_RULE,
                        kind="stale_feed",
                        level=self.stale_seconds,
                        symbol=symbol,
                        ts_ns=now_ns,
                        price=last_price,
                    ),
                    rule=STALE_RULE,
                    symbol=symbol,
                    kind="stale_feed",
                    level=self.stale_seconds,
                    price=last_price,
                    ts_ns=now_ns,
                )
            )
        return alerts

    def ages(self, now_ns: int) -> dict[str, float]:
        """Seconds since each symbol's last tick (since start-up for one that never ticked)."""
        return {symbol: (now_ns - seen) / 1e9 for symbol, (seen, _) in self._last.items()}
