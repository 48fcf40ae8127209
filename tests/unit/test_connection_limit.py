"""The per-address connection cap both servers count with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.connection_limit import ConnectionLimit, peer_address


def test_connection_limit_admits_up_to_the_cap_per_address() -> None:
    limit = ConnectionLimit(2)
    assert [limit.admit("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert limit.admit("10.0.0.2")  # another address has its own count
    limit.release("10.0.0.1")
    assert limit.admit("10.0.0.1")
    assert limit.refused == 1


def test_connection_limit_zero_is_no_limit() -> None:
    limit = ConnectionLimit(0)
    assert all(limit.admit("10.0.0.1") for _ in range(10_000))


def test_connection_limit_refuses_a_negative_cap() -> None:
    with pytest.raises(ValueError, match="0 \\(no limit\\) or more"):
        ConnectionLimit(-1)


@given(st.integers(1, 5), st.lists(st.tuples(st.booleans(), st.sampled_from("abc")), max_size=80))
def test_connection_limit_never_holds_more_than_the_cap_and_forgets_closed_ones(
    cap: int, events: list[tuple[bool, str]]
) -> None:
    limit = ConnectionLimit(cap)
    open_: dict[str, int] = {}
    for opening, address in events:
        if opening:
            if limit.admit(address):
                open_[address] = open_.get(address, 0) + 1
        elif open_.get(address):
            limit.release(address)
            open_[address] -= 1
        assert all(count <= cap for count in limit.open.values())
        assert dict(limit.open) == {a: n for a, n in open_.items() if n}


def test_peer_address_of_transports() -> None:
    assert peer_address(("127.0.0.1", 5000)) == "127.0.0.1"
    assert peer_address(("::1", 5000, 0, 0)) == "::1"
    assert peer_address(None) == "?"
