"""Retry delays: doubling, capped, jittered."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.backoff import retry_delay


def test_ceilings_double_from_initial_up_to_the_cap() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, initial=0.5, maximum=4.0, rng=rng) for n in range(1, 8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


@given(st.integers(min_value=1, max_value=100_000), st.floats(0.001, 10), st.floats(0.001, 600))
def test_any_attempt_waits_between_half_the_ceiling_and_the_ceiling(
    attempt: int, initial: float, maximum: float
) -> None:
    delay = retry_delay(attempt, initial=initial, maximum=maximum)
    ceiling = min(maximum, initial * 2 ** min(attempt - 1, 64))
    assert ceiling / 2 <= delay <= ceiling


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        retry_delay(0, initial=1, maximum=2)
