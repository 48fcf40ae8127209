"""Counting rejected ticks: by reason, each reason logged once."""

from __future__ import annotations

from collections import Counter

import structlog

from service.errors import TickError

log = structlog.get_logger("service.streams")


class Rejections:
    """Tally of rejected ticks.

    The first rejection of each reason is logged (``tick_rejected``) with what
    was wrong and where; later ones of that reason are only counted, so a feed
    that sends garbage cannot flood the log.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def record(self, error: TickError, *, source: str, where: str | None = None) -> None:
        reason = error.reason
        self.counts[reason] += 1
        if self.counts[reason] == 1:
            place = f"{source} {where}" if where else source
            self.first[reason] = f"{place}: {error.detail}"
            log.warning(
                "tick_rejected",
                reason=reason,
                detail=error.detail,
                source=source,
                where=where,
                repeats="counted, not logged",
            )

    @property
    def total(self) -> int:
        return self.counts.total()

    def summary(self) -> str:
        """One line per reason, most frequent first, with where it first happened."""
        return "\n".join(
            f"  {reason}: {count} (first: {self.first[reason]})"
            for reason, count in self.counts.most_common()
        )
