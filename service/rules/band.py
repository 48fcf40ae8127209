"""The price band: which prices of a symbol are plausible, given its recent ones.

A decimal slip or a bad print (1.0 for a $255 ETF, 1e308) must not fire a
break, nor move the levels' state. The contract, per symbol
(``tests/unit/rules/test_band.py`` checks each clause; the engine's property
tests check it together with the level rules):

* the first price is accepted and becomes the *anchor*;
* a price is *plausible* when it is within ``width`` (a fraction, 0.2 for
  20 %) of the anchor, bounds included: ``abs(price - anchor) <= width *
  anchor``; a plausible price is accepted, anything else rejected
  (``price_implausible``);
* the anchor follows the market in steps: an accepted price more than half
  the width from the anchor becomes the anchor. So a tick may always move at
  least half the width from the previous accepted one;
* a real gap (a halt, a reopening) is accepted once ``rebase_ticks``
  consecutive rejected prices agree, each within ``width`` of the first of
  them: the last of them is accepted and becomes the anchor. An accepted price
  ends such a run; a rejected one that does not agree starts a new run with
  itself. Bad prints between good ticks therefore never move the band.

Prices inside :attr:`PriceBand.zone_low` … :attr:`PriceBand.zone_high` are
accepted without changing anything: the engine folds that zone into its fast
path, so the band costs a common tick nothing. The zone is empty while a run
of rejected prices lasts (every price then matters), so after a rejection
the caller must fold the zone in again.
"""

from __future__ import annotations

import math

_INF = math.inf


class PriceBand:
    """The band of one symbol. ``width`` 0.2 is ±20 % of the anchor."""

    __slots__ = (
        "_half",
        "_rebase_ticks",
        "_run",
        "_run_anchor",
        "_width",
        "anchor",
        "zone_high",
        "zone_low",
    )

    def __init__(self, width: float, *, rebase_ticks: int) -> None:
        if not 0 < width < 1:
            raise ValueError(f"a price band's width is a fraction in (0, 1), got {width}")
        if rebase_ticks < 2:
            raise ValueError(f"rebase_ticks must be at least 2, got {rebase_ticks}")
        self._width = width
        self._half = width / 2
        self._rebase_ticks = rebase_ticks
        self.anchor: float | None = None
        # Consecutive rejected prices that agree, and the first of them.
        self._run = 0
        self._run_anchor = 0.0
        # Empty until the first price: every price takes admit().
        self.zone_low = _INF
        self.zone_high = -_INF

    def admit(self, price: float) -> bool:
        """Whether ``price`` is accepted; updates the anchor and the run of rejected prices."""
        anchor = self.anchor
        if anchor is None or self._within(price, anchor, self._width):
            if anchor is None or not self._within(price, anchor, self._half):
                self._move(price)
            elif self._run:
                self._move(anchor)  # the run ends: the zone is back
            self._run = 0
            return True
        if self._run and self._within(price, self._run_anchor, self._width):
            self._run += 1
        else:
            self._run, self._run_anchor = 1, price
        if self._run >= self._rebase_ticks:
            self._run = 0
            self._move(price)
            return True
        # While a run lasts every price must come here, to end it or to extend it.
        self.zone_low, self.zone_high = _INF, -_INF
        return False

    def state(self) -> list[float] | None:
        """What it keeps, for a checkpoint: the anchor and the run of rejected prices."""
        if self.anchor is None:
            return None
        return [self.anchor, self._run, self._run_anchor]

    def restore(self, state: list[float] | None) -> None:
        """Take back what :meth:`state` gave."""
        if state is None:
            return
        anchor, run, self._run_anchor = state
        self._move(anchor)
        self._run = int(run)
        if self._run:
            self.zone_low, self.zone_high = _INF, -_INF  # a run lasts: every price matters

    def low_high(self) -> tuple[float, float]:
        """The plausible prices now, bounds included (``-inf, inf`` before the first price)."""
        if self.anchor is None:
            return -_INF, _INF
        return self.anchor - self._width * self.anchor, self.anchor + self._width * self.anchor

    @staticmethod
    def _within(price: float, anchor: float, width: float) -> bool:
        return abs(price - anchor) <= width * anchor

    def _move(self, anchor: float) -> None:
        self.anchor = anchor
        # One step inside the exact bounds, so that rounding can never put in the
        # zone a price that _within() would judge outside it.
        self.zone_low = math.nextafter(anchor - self._half * anchor, _INF)
        self.zone_high = math.nextafter(anchor + self._half * anchor, -_INF)
