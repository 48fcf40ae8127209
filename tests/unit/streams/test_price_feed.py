"""The prices of a cluster: what an engine's relay publishes is what a gateway's feed reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.price_relay import PriceRelay, encode_prices
from service.models import Tick
from service.mqtt_common import Broker
from service.processing.batch import Batch
from service.streams.price_feed import PriceFeed, PricesError, decode_prices
from service.streams.rejections import Rejections
from service.timestamps import format_timestamp
from tests.builders import at, tick

BROKER = Broker(name="feed", host="127.0.0.1", port=1883, client_id="strykr")

ticks = st.builds(
    Tick,
    symbol=st.from_regex(r"[A-Z]{1,5}(-USD)?", fullmatch=True),
    price=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
    ts_ns=st.integers(min_value=at(0), max_value=at(10**8)),
    volume=st.none() | st.floats(min_value=0, max_value=1e9, allow_nan=False),
)


@given(st.lists(ticks, max_size=50))
def test_a_gateway_reads_the_ticks_an_engine_publishes(published: list[Tick]) -> None:
    got, errors = decode_prices(encode_prices(published))
    assert errors == []
    assert [(t.symbol, t.price, t.volume) for t in got] == [
        (t.symbol, t.price, t.volume) for t in published
    ]
    # Times to the millisecond, as every tick source writes them.
    assert [format_timestamp(t.ts_ns) for t in got] == [
        format_timestamp(t.ts_ns) for t in published
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", 'expected {"ticks"'),
        (b'{"ticks": {"IWM": 1}}', 'expected {"ticks"'),
        (b" " * (4 * 1024 * 1024 + 1), "more than 4194304"),
    ],
)
def test_a_message_that_is_not_a_list_of_ticks_is_refused_whole(
    payload: bytes, expected: str
) -> None:
    with pytest.raises(PricesError, match=expected):
        decode_prices(payload)


def test_a_bad_tick_is_refused_alone_and_counted() -> None:
    rejections = Rejections()
    seen: list[Tick] = []
    feed = PriceFeed(BROKER, "strykr/prices", seen.extend, rejections)
    good = json.loads(encode_prices([tick(254.0, 1)]))["ticks"][0]
    message = {"ticks": [good, ["IWM", -1, good[2], None], ["IWM"], good]}
    feed.receive("strykr/prices/0of2", json.dumps(message).encode())
    feed.receive("strykr/prices/0of2", b"{}")
    assert [t.price for t in seen] == [254.0, 254.0]
    assert dict(rejections.counts) == {
        "price_not_positive": 1,
        "malformed": 1,
        "bad_prices_message": 1,
    }
    assert (feed.messages, feed.refused) == (2, 1)


def test_the_relay_sends_each_symbols_last_tick_once() -> None:
    relay = PriceRelay(BROKER, "strykr/prices", hz=4, shard="1/2")
    assert relay.topic == "strykr/prices/1of2"
    assert relay.take() is None
    relay(Batch([tick(254.0, 1), tick(500.0, 1, symbol="SPY"), tick(253.5, 2)], []))
    relay(Batch([tick(253.0, 3)], []))
    message = relay.take()
    assert message is not None
    got, _ = decode_prices(message)
    assert sorted((t.symbol, t.price) for t in got) == [("IWM", 253.0), ("SPY", 500.0)]
    assert relay.take() is None  # nothing traded since
    assert PriceRelay(BROKER, "p", hz=1, shard="").topic == "p/all"
