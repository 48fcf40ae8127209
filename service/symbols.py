"""Instrument symbols: one normal form for config, feeds and articles."""

from __future__ import annotations

import re

from service.text import quote

# Upper-case letters and digits first (or ^ for index tickers such as ^GSPC),
# then the punctuation real tickers use: BRK.B, BTC-USD, EUR/USD, ES=F, XNYS:IWM.
_SYMBOL = re.compile(r"^[A-Z0-9^][A-Z0-9._/:=^-]{0,31}$")


def normalize_symbol(value: object) -> str:
    """Return ``value`` as a symbol (stripped, upper-case) or raise ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError(f"expected a symbol string, got {type(value).__name__}")
    symbol = value.strip().upper()
    if not symbol:
        raise ValueError("expected a symbol, got an empty string")
    if not _SYMBOL.match(symbol):
        raise ValueError(
            f"expected a symbol of up to 32 letters, digits and . _ / : = ^ -, got {quote(symbol)}"
        )
    return symbol
