"""Retry delays: capped exponential backoff with jitter.

Every reconnecting client (MQTT, websocket feeds, the article feed) waits
``retry_delay(attempt)`` before its next try. The jitter spreads the retries of
many instances, so a broker coming back is not hit by all of them at once.
"""

from __future__ import annotations

import random


def retry_delay(
    attempt: int, *, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """The wait before retry number ``attempt`` (1 for the first retry), in seconds.

    The ceiling doubles from ``initial`` up to ``maximum``; the delay is drawn
    between half the ceiling and the ceiling.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    # min() first: 2 ** attempt overflows a float after about a thousand attempts.
    ceiling = min(maximum, initial * 2 ** min(attempt - 1, 64))
    return (rng or random).uniform(ceiling / 2, ceiling)
