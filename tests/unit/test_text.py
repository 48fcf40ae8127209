from __future__ import annotations

from service.text import SHOWN_CHARS, quote


def test_quote_wraps_in_double_quotes() -> None:
    assert quote("down") == '"down"'


def test_quote_escapes_quotes_and_line_breaks_so_a_value_cannot_fake_a_log_line() -> None:
    assert quote('a"b\nlevel=error') == '"a\\"b\\nlevel=error"'


def test_quote_cuts_long_input_and_says_so() -> None:
    shown = quote("x" * 1_000_000)
    assert shown == '"' + "x" * SHOWN_CHARS + '…"'
    assert quote("y" * 100, limit=60) == '"' + "y" * 60 + '…"'
