"""One MQTT message → a tick, or the reason it is rejected."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import TickError
from service.models import Tick
from service.streams.decode import REJECTION_REASONS
from service.streams.mqtt import parse_payload


def test_payload_of_the_documented_form_is_a_tick() -> None:
    tick = parse_payload(
        "ticks/IWM",
        b'{"symbol": "IWM", "price": 254.6, "ts": "2026-02-02T14:30:14.000Z", "volume": 100}',
        max_bytes=1024,
    )
    assert tick == Tick(symbol="IWM", price=254.6, ts_ns=1770042614 * 10**9, volume=100.0)


@pytest.mark.parametrize("ts", ["1770042614", "1770042614000", '"2026-02-02T14:30:14Z"'])
def test_payload_time_in_epoch_seconds_or_ms_or_iso_is_the_same_instant(ts: str) -> None:
    tick = parse_payload("ticks/IWM", f'{{"price": 1, "ts": {ts}}}'.encode(), max_bytes=1024)
    assert tick.ts_ns == 1770042614 * 10**9


def test_payload_without_symbol_takes_the_last_topic_level() -> None:
    tick = parse_payload("feeds/us/spx", b'{"price": 4850, "ts": 1770042614}', max_bytes=1024)
    assert tick.symbol == "SPX"


def test_payload_symbol_wins_over_the_topic() -> None:
    tick = parse_payload("ticks/IWM", b'{"symbol": "RUT", "price": 1, "ts": 1}', max_bytes=64)
    assert tick.symbol == "RUT"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe binary", "not_json"),
        (b"[" * 5_000 + b"]" * 5_000, "not_json"),  # nested past the parser's depth
        (b'{"symbol": "IWM", "ts": 1770042614}', "missing_price"),
        (b'{"price": "NaN", "ts": 1770042614}', "price_not_finite"),
        (b'{"price": NaN, "ts": 1770042614}', "price_not_finite"),
        (b'{"price": -5, "ts": 1770042614}', "price_not_positive"),
        (b'{"price": 1}', "missing_ts"),
        (b"[1, 2]", "not_an_object"),
        (b'{"price": 1, "ts": 1}' + b" " * 20_000, "payload_too_large"),
    ],
)
def test_bad_payload_is_rejected_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(TickError) as caught:
        parse_payload("ticks/IWM", payload, max_bytes=16_384)
    assert caught.value.reason == reason
    assert reason in REJECTION_REASONS  # documented, and counted under a known name


def test_oversized_payload_says_its_size_and_the_limit() -> None:
    with pytest.raises(
        TickError, match=r"payload of 2,000 bytes is over max_payload_bytes \(1,024\)"
    ):
        parse_payload("ticks/IWM", b"x" * 2_000, max_bytes=1_024)


@given(st.binary(max_size=300), st.text(max_size=30))
def test_any_payload_on_any_topic_is_a_tick_or_a_tick_error(payload: bytes, topic: str) -> None:
    try:
        tick = parse_payload(topic, payload, max_bytes=256)
    except TickError:
        return
    assert tick.price > 0


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "symbol": st.one_of(st.text(max_size=8), st.integers(), st.none()),
            "price": st.one_of(st.floats(), st.integers(), st.text(max_size=8), st.none()),
            "ts": st.one_of(st.integers(), st.floats(), st.text(max_size=30), st.none()),
            "volume": st.one_of(st.floats(), st.integers(), st.text(max_size=5)),
        },
    )
)
def test_any_json_object_is_a_tick_or_a_tick_error(message: dict[str, object]) -> None:
    try:
        payload = json.dumps(message).encode()
    except ValueError:
        return
    try:
        tick = parse_payload("ticks/IWM", payload, max_bytes=4096)
    except TickError:
        return
    assert tick.price > 0
    assert tick.ts_ns > 0
