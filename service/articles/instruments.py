"""Which instrument a piece of article text names.

Three ways to name one, tried in this order:

* ``Name (TICKER)``, e.g. ``iShares Russell 2000 ETF (IWM)``: the ticker wins
  over any alias inside the name;
* a name from the alias table (``S&P 500`` → SPX), matched case-insensitively
  as whole words, hyphen or space alike (``Nasdaq-100``);
* a ticker written in capitals (``IWM``) or as a cashtag (``$IWM``), unless it
  is a common capitalised word of market prose (``RSI``, ``ETF``, ``CEO``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from service.symbols import normalize_symbol

# The names every deployment knows; alerts.toml's [aliases] adds to them and
# may point a name elsewhere.
DEFAULT_ALIASES: Mapping[str, str] = {
    "S&P 500": "SPX",
    "Russell 2000": "RUT",
    "Nasdaq 100": "NDX",
    "Dow Jones": "DJI",
    "Dow Jones Industrial Average": "DJI",
    "VIX": "VIX",
    "Bitcoin": "BTC",
    "Ethereum": "ETH",
    "Ether": "ETH",
}

# Capitalised words of market prose that are not instruments.
NOT_TICKERS = frozenset(
    """
    AI AM ATH ATR BOJ BOE CAGR CCI CEO CFO CFTC CPI CTA DMA DOJ ECB EMA EPS ESG ETF ETFS
    EU EUR FAQ FDIC FED FOMC FX FY GDP GMT HFT HY IG IMF IPO ISM IT ITS LLC MA MACD
    MFI NAV NFP NYSE OBV OK OPEC OTC PCE PE PM PMI PPI QE QT QOQ RSI SEC SMA TGA TV UK
    UN US USA USD UTC VWAP WSJ YOY YTD ZIRP
    """.split()
)

_TICKER = r"[A-Z]{1,5}(?:[.-][A-Z]{1,4})?"
_PAREN_TICKER = re.compile(r"\((" + _TICKER + r")\)")
# A name before "(TICKER)" is up to six words, each with a capital or a digit
# ("iShares", "S&P", "500", "ETF"), so "the" ends it.
_NAME_WORDS = 6
_NAME_WORD = re.compile(r"[A-Z0-9]")
_NAME_REACH = 80
_CASHTAG = re.compile(r"(?<![\w$])\$(" + _TICKER + r")\b")
_CAPS_TICKER = re.compile(r"(?<![\w&$.-])([A-Z]{2,5})(?![\w&-])")


@dataclass(frozen=True, slots=True)
class Mention:
    """``symbol`` is named by the text at ``start:end``."""

    start: int
    end: int
    symbol: str


class Instruments:
    """Finds the instruments a text names, given an alias table (name → symbol)."""

    def __init__(self, aliases: Mapping[str, str] = DEFAULT_ALIASES) -> None:
        self.aliases = {name: normalize_symbol(symbol) for name, symbol in aliases.items()}
        self._by_key = {_key(name): symbol for name, symbol in self.aliases.items()}
        # Longest names first, so "Dow Jones Industrial Average" wins over "Dow Jones".
        names = sorted(self.aliases, key=len, reverse=True)
        alternatives = "|".join(_name_pattern(name) for name in names if name.strip())
        self._alias = (
            re.compile(rf"(?<![\w&])(?:{alternatives})(?![\w&])", re.IGNORECASE)
            if alternatives
            else None
        )

    def mentions(self, text: str) -> list[Mention]:
        """Every instrument mention in ``text``, in order, none overlapping."""
        found: list[Mention] = []
        taken: list[tuple[int, int]] = []
        for match in _PAREN_TICKER.finditer(text):
            symbol = _symbol(match.group(1))
            if symbol is None or match.group(1) in NOT_TICKERS:
                continue
            start = _name_start(text, match.start())
            found.append(Mention(start, match.end(), symbol))
            taken.append((start, match.end()))
        if self._alias is not None:
            for match in self._alias.finditer(text):
                if _overlaps(match.start(), match.end(), taken):
                    continue
                symbol = self._by_key.get(_key(match.group(0)))
                if symbol is not None:
                    found.append(Mention(match.start(), match.end(), symbol))
                    taken.append((match.start(), match.end()))
        for pattern in (_CASHTAG, _CAPS_TICKER):
            for match in pattern.finditer(text):
                word = match.group(1)
                if word in NOT_TICKERS or _overlaps(match.start(), match.end(), taken):
                    continue
                symbol = _symbol(word)
                if symbol is not None:
                    found.append(Mention(match.start(), match.end(), symbol))
                    taken.append((match.start(), match.end()))
        found.sort(key=lambda mention: mention.start)
        return found


def _name_start(text: str, paren: int) -> int:
    """Where the name before a "(TICKER)" at ``paren`` starts (``paren`` if there is none)."""
    start = paren
    reach = max(0, paren - _NAME_REACH)
    words = list(re.finditer(r"\S+", text[reach:paren]))[-_NAME_WORDS:]
    for match in reversed(words):
        if not _NAME_WORD.search(match.group(0)):
            break
        start = reach + match.start()
    return start


def _name_pattern(name: str) -> str:
    words = [re.escape(word) for word in re.split(r"[\s-]+", name.strip())]
    return r"[\s-]*".join(words)


def _key(name: str) -> str:
    return "".join(re.split(r"[\s-]+", name.strip().casefold()))


def _symbol(text: str) -> str | None:
    try:
        return normalize_symbol(text)
    except ValueError:
        return None


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < span_end and span_start < end for span_start, span_end in spans)
