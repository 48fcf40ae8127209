from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.timestamps import (
    NS_PER_MS,
    format_timestamp,
    parse_duration,
    parse_timestamp,
    seconds_to_ns,
)

T = 1_770_042_614_000_000_000  # 2026-02-02T14:30:14Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-02T14:30:14.000Z", T),
        ("2026-02-02T14:30:14Z", T),
        ("2026-02-02T15:30:14+01:00", T),
        ("2026-02-02 14:30:14", T),  # no offset: UTC
        ("2026-02-02T14:30:14.123456Z", T + 123_456_000),
        (1_770_042_614, T),  # epoch seconds
        (1_770_042_614.25, T + 250 * NS_PER_MS),
        ("1770042614", T),
        ("1770042614.123", T + 123 * NS_PER_MS),
        (1_770_042_614_123, T + 123 * NS_PER_MS),  # epoch milliseconds
        (1_770_042_614_123_456, T + 123_456_000),  # microseconds
        (1_770_042_614_123_456_789, T + 123_456_789),  # nanoseconds
        (datetime(2026, 2, 2, 14, 30, 14, tzinfo=UTC), T),
        (datetime(2026, 2, 2, 14, 30, 14), T),
        (datetime(2026, 2, 2, 9, 30, 14, tzinfo=timezone(timedelta(hours=-5))), T),
    ],
)
def test_parse_timestamp_accepts_iso_epoch_and_datetime(value: object, expected: int) -> None:
    assert parse_timestamp(value) == expected


def test_parse_timestamp_float_epoch_keeps_the_written_milliseconds_exactly() -> None:
    assert parse_timestamp(1770042614.123) % 1_000_000_000 == 123_000_000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "expected an ISO 8601 time"),
        ("", "empty"),
        (True, "boolean"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (-5, "after 1970"),
        (0, "after 1970"),
        (1.5e-264, "after 1970"),
        (10**21, "out of range"),
        ("1e400", "out of range"),
        ([1], "got list"),
        ("0001-01-01T00:00:00Z", "after 1970"),
    ],
)
def test_parse_timestamp_when_bad_says_what_it_expected(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timestamp(value)


@given(st.integers(min_value=1, max_value=253_402_300_799_999).map(lambda ms: ms * NS_PER_MS))
def test_format_then_parse_round_trips_at_millisecond_precision(ts_ns: int) -> None:
    text = format_timestamp(ts_ns)
    assert text.endswith("Z")
    assert len(text) == len("2026-02-02T14:30:14.000Z")
    assert parse_timestamp(text) == ts_ns


@given(st.text(max_size=60))
def test_parse_timestamp_on_any_text_returns_or_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_timestamp(text) > 0


def test_format_timestamp_truncates_to_milliseconds() -> None:
    assert format_timestamp(T + 999_999) == "2026-02-02T14:30:14.000Z"
    assert format_timestamp(T + 1_000_000) == "2026-02-02T14:30:14.001Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("500ms", 500 * NS_PER_MS),
        ("30s", 30 * 10**9),
        ("1m", 60 * 10**9),
        ("4h", 4 * 3600 * 10**9),
        ("1d", 86400 * 10**9),
    ],
)
def test_parse_duration_reads_units(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["0m", "1 m", "1min", "m", "-1s", "1.5m", ""])
def test_parse_duration_when_bad_raises(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_seconds_to_ns_rounds_to_whole_nanoseconds() -> None:
    assert seconds_to_ns(0.1) == 100_000_000
    assert seconds_to_ns(900) == 900 * 10**9
