"""The prices of a cluster: what an engine's relay publishes is what a follower's feed reads.

The segments make the same bars as the ticks they stand for, however the
relay's flushes fall: the API of a cluster draws the charts the one process
would.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.delivery.price_relay import PriceRelay, encode_segments
from service.models import Tick
from service.mqtt_common import Broker
from service.processing.batch import Batch
from service.processing.history import ChartHistory, HistoryConfig
from service.streams.price_feed import PriceFeed, PricesError, Segment, decode_prices
from service.streams.rejections import Rejections
from tests.builders import T0_NS, tick

BROKER = Broker(name="feed", host="127.0.0.1", port=1883, client_id="strykr")
SECOND = 1_000_000_000
BARS = HistoryConfig(bars={"1s": "1d", "10s": "1d", "1m": "1d"})


@st.composite
def streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks of two symbols in time order, some in the same second, over a few minutes.

    Volumes are whole numbers, so sums are exact in any order.
    """
    count = draw(st.integers(1, 120))
    gaps = draw(st.lists(st.integers(0, 3 * SECOND), min_size=count, max_size=count))
    made, ts = [], T0_NS
    for gap in gaps:
        ts += gap
        made.append(
            Tick(
                symbol=draw(st.sampled_from(["IWM", "SPX"])),
                price=draw(st.floats(10, 20).map(lambda p: round(p, 2))),
                ts_ns=ts,
                volume=draw(st.none() | st.integers(0, 1000).map(float)),
            )
        )
    return made


def relayed(ticks: list[Tick], cuts: list[int], takes: set[int]) -> list[Segment]:
    """``ticks`` through a relay in batches cut at ``cuts``, taken after the batches in
    ``takes`` (and at the end), each message decoded as a follower does."""
    relay = PriceRelay(BROKER, "strykr/prices", hz=4, shard="0/2")
    segments: list[Segment] = []
    bounds = sorted({0, *cuts, len(ticks)})
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        relay(Batch(ticks[start:end], ()))
        message = relay.take() if index in takes or end == len(ticks) else None
        if message is not None:
            got, errors = decode_prices(message)
            assert errors == []
            segments += got
    return segments


@settings(max_examples=150, deadline=None)
@given(
    streams(),
    st.lists(st.integers(0, 120), max_size=10),
    st.sets(st.integers(0, 12), max_size=12),
)
def test_a_followers_bars_are_those_of_the_engines_ticks_however_the_flushes_fall(
    ticks: list[Tick], cuts: list[int], takes: set[int]
) -> None:
    direct = ChartHistory(BARS)
    direct.observe(ticks)
    followed = ChartHistory(BARS)
    segments = relayed(ticks, [cut for cut in cuts if cut < len(ticks)], takes)
    followed.observe([t for segment in segments for t in segment.ticks()])
    for symbol in ("IWM", "SPX"):
        for interval in ("1s", "10s", "1m"):
            assert followed.bars(symbol, interval) == direct.bars(symbol, interval)
    # A dashboard's price: each symbol's last segment ends with its last tick.
    last = {segment.symbol: segment.last() for segment in segments}
    newest = {t.symbol: t for t in ticks}  # in time order: the last of each symbol
    assert {s: (t.price, t.ts_ns) for s, t in last.items()} == {
        s: (t.price, t.ts_ns) for s, t in newest.items()
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", 'expected {"segments"'),
        (b'{"segments": {"IWM": 1}}', 'expected {"segments"'),
        (b" " * (4 * 1024 * 1024 + 1), "more than 4194304"),
    ],
)
def test_a_message_that_is_not_a_list_of_segments_is_refused_whole(
    payload: bytes, expected: str
) -> None:
    with pytest.raises(PricesError, match=expected):
        decode_prices(payload)


def test_a_bad_segment_is_refused_alone_and_counted() -> None:
    rejections = Rejections()
    seen: list[Segment] = []
    feed = PriceFeed(BROKER, "strykr/prices", seen.extend, rejections)
    good = ["IWM", T0_NS, 254.0, 255.0, 253.0, T0_NS + 5, 254.5, 100.0]
    message = {
        "segments": [
            good,
            ["IWM", T0_NS, 254.0, 255.0, 253.0, T0_NS + 5, -1.0, 100.0],  # a bad close
            ["IWM", T0_NS, 254.0, 250.0, 253.0, T0_NS + 5, 254.5, 100.0],  # high under low
            ["IWM", T0_NS + 9, 254.0, 255.0, 253.0, T0_NS, 254.5, 100.0],  # ends before it starts
            ["IWM", T0_NS, "254", 255.0, 253.0, T0_NS + 5, 254.5, 100.0],  # a price as text
            ["IWM"],
            good,
        ]
    }
    feed.receive("strykr/prices/0of2", json.dumps(message).encode())
    feed.receive("strykr/prices/0of2", b"{}")
    assert [segment.close for segment in seen] == [254.5, 254.5]
    assert dict(rejections.counts) == {
        "price_not_positive": 1,
        "bad_price": 2,
        "bad_ts": 1,
        "malformed": 1,
        "bad_prices_message": 1,
    }
    assert (feed.messages, feed.refused) == (2, 1)


def test_the_relay_sends_each_symbols_segments_once() -> None:
    relay = PriceRelay(BROKER, "strykr/prices", hz=4, shard="1/2")
    assert relay.topic == "strykr/prices/1of2"
    assert relay.take() is None
    relay(Batch([tick(254.0, 1), tick(500.0, 1, symbol="SPY"), tick(253.5, 1.5)], []))
    relay(Batch([tick(253.0, 2)], []))  # the next second: a segment of its own
    message = relay.take()
    assert message is not None
    got, _ = decode_prices(message)
    assert sorted((s.symbol, s.open, s.high, s.low, s.close) for s in got) == [
        ("IWM", 253.0, 253.0, 253.0, 253.0),
        ("IWM", 254.0, 254.0, 253.5, 253.5),
        ("SPY", 500.0, 500.0, 500.0, 500.0),
    ]
    assert relay.take() is None  # nothing traded since
    assert encode_segments([]) == b'{"segments":[]}'
    assert PriceRelay(BROKER, "p", hz=1, shard="").topic == "p/all"
