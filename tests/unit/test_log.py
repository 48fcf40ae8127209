from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from service.log import configure_logging


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_logging_off_a_terminal_writes_json_lines() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    structlog.get_logger().info("alert_fired", symbol="IWM", price=254.6)
    line = json.loads(out.getvalue())
    assert (line["event"], line["symbol"], line["price"], line["level"]) == (
        "alert_fired",
        "IWM",
        254.6,
        "info",
    )
    assert line["timestamp"].endswith("Z")


def test_logging_on_a_terminal_is_readable_and_keeps_key_order() -> None:
    out = Terminal()
    configure_logging(stream=out)
    structlog.get_logger().info("alert_fired", headline="IWM broke below 255.00", alert_id="x")
    text = out.getvalue()
    assert not text.startswith("{")
    assert text.index("headline") < text.index("alert_id")


def test_logging_on_a_terminal_never_prints_local_variables_of_a_traceback() -> None:
    out = Terminal()
    configure_logging(stream=out)
    try:
        password = "".join(["s3", "cr3t"])  # as read from an env: value
        raise RuntimeError(f"login failed ({len(password)} chars)")
    except RuntimeError:
        structlog.get_logger().exception("delivery_failed")
    assert "RuntimeError" in out.getvalue()
    assert "s3cr3t" not in out.getvalue()


def test_logging_level_filters_lower_levels() -> None:
    out = io.StringIO()
    configure_logging(level="warning", stream=out)
    structlog.get_logger().info("noise")
    structlog.get_logger().warning("tick_rejected")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["tick_rejected"]
