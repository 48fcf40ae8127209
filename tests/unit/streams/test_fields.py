"""Reading ticks out of a vendor's JSON messages by a field map."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from service.errors import TickError
from service.models import Tick
from service.streams.fields import lookup, matches, ticks_from_message
from service.streams.settings import FieldMap

VENDOR = FieldMap(symbol="s", price="p", ts="T", volume="q", match=(("e", "trade"),))


def test_lookup_follows_dotted_paths_through_objects_and_lists() -> None:
    message = {"data": [{"p": "1.5"}, {"p": 2}], "meta": {"seq": 7}}
    assert lookup(message, "data.1.p") == 2
    assert lookup(message, "meta.seq") == 7
    assert lookup(message, "data.2.p") is None
    assert lookup(message, "meta.seq.deeper") is None
    assert lookup("text", "0") is None  # a string is not a list of characters


def test_match_requires_every_value_and_keeps_booleans_apart_from_numbers() -> None:
    fields = FieldMap(match=(("e", "trade"), ("live", True)))
    assert matches({"e": "trade", "live": True}, fields)
    assert not matches({"e": "trade", "live": 1}, fields)
    assert not matches({"e": "trade"}, fields)
    assert matches({"n": 1.0}, FieldMap(match=(("n", 1),)))


def test_vendor_trade_becomes_a_tick_with_epoch_ms_time() -> None:
    message = {"e": "trade", "s": "btc", "p": "92500.10", "T": 1770042614123, "q": "0.5"}
    [tick] = ticks_from_message(message, VENDOR)
    assert tick == Tick(symbol="BTC", price=92500.10, ts_ns=1770042614123 * 10**6, volume=0.5)


def test_messages_that_do_not_match_are_ignored_not_rejected() -> None:
    assert ticks_from_message({"result": None, "id": 1}, VENDOR) == []


def test_items_path_reads_every_tick_of_a_batch_and_rejects_the_bad_one() -> None:
    fields = FieldMap(items="data", symbol="sym", price="px", ts="t")
    message = {
        "data": [
            {"sym": "IWM", "px": 254.6, "t": "2026-02-02T14:30:14Z"},
            {"sym": "IWM", "px": -1, "t": "2026-02-02T14:30:15Z"},
            "junk",
        ]
    }
    results = ticks_from_message(message, fields)
    assert isinstance(results[0], Tick)
    assert results[0].price == 254.6
    assert [r.reason for r in results[1:] if isinstance(r, TickError)] == [
        "price_not_positive",
        "not_an_object",
    ]


def test_items_path_missing_is_one_rejection() -> None:
    [error] = ticks_from_message({"other": 1}, FieldMap(items="data"))
    assert isinstance(error, TickError)
    assert error.reason == "not_an_object"
    assert "data" in error.detail


def test_fixed_symbol_names_the_ticks_of_a_single_instrument_feed() -> None:
    fields = FieldMap(fixed_symbol="BTC", price="price", ts="time")
    [tick] = ticks_from_message({"price": 92000, "time": 1770042614}, fields)
    assert isinstance(tick, Tick)
    assert tick.symbol == "BTC"


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["e", "s", "p", "T", "q", "data", "x"]), children, max_size=5
        )
    ),
    max_leaves=20,
)


@given(JSON, st.sampled_from([VENDOR, FieldMap(items="data"), FieldMap(items="data.0")]))
def test_any_json_message_gives_ticks_or_tick_errors_never_an_exception(
    message: object, fields: FieldMap
) -> None:
    for item in ticks_from_message(message, fields):
        assert isinstance(item, Tick | TickError)
        if isinstance(item, Tick):
            assert item.price > 0
            json.dumps(item.symbol)
