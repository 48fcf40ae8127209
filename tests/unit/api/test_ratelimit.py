from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.api.ratelimit import RateLimiter


def test_a_burst_passes_then_the_client_waits_for_the_refill() -> None:
    limiter = RateLimiter(per_minute=6, burst=2)
    assert [limiter.take("a", 0.0), limiter.take("a", 0.0)] == [0.0, 0.0]
    assert limiter.take("a", 0.0) == 10.0  # one token every 10 s
    assert limiter.take("b", 0.0) == 0.0  # another client has its own bucket
    assert limiter.take("a", 10.0) == 0.0


def test_memory_is_bounded_by_forgetting_the_least_recent_client() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=3)
    for index in range(10):
        limiter.take(f"10.0.0.{index}", float(index))
    assert len(limiter) == 3


@given(
    burst=st.integers(1, 10),
    per_minute=st.floats(0.5, 600),
    gaps=st.lists(st.floats(0, 30), max_size=60),
)
def test_never_more_than_the_burst_plus_what_the_rate_refilled(
    burst: int, per_minute: float, gaps: list[float]
) -> None:
    limiter = RateLimiter(per_minute=per_minute, burst=burst)
    now = 0.0
    allowed = 0
    for gap in gaps:
        now += gap
        if limiter.take("client", now) == 0.0:
            allowed += 1
    assert allowed <= burst + now * per_minute / 60 + 1e-9
