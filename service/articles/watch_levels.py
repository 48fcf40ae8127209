"""Strykr Watch text → price levels: which instrument, which price, which side.

The watch is read a sentence at a time, each sentence a clause at a time:

1. Instruments are found first (:mod:`service.articles.instruments`) and
   blanked out, with dates and times, so "S&P 500" or "2026-02-01" never reads
   as a price.
2. Every other number is a candidate unless its neighbours say it is no price:
   ``1.4%``, ``25 bps``, ``$64.3 billion``, ``50-day``, ``RSI at 45``,
   ``3 sessions``, ``40/100``, ``in 2026``.
3. Its side comes from the nearest cue word in its clause: "support",
   "floor", "break below", "down to" → support; "resistance", "ceiling",
   "cap", "breakout above", "target" → resistance. "sits", "trades", "stuck
   below" mark the current price, which is not a level. "between $255 and
   $265" is a range: the low end is support, the high end resistance.
4. Its instrument is the nearest one named before it in the sentence, else
   the next one named after it (in its clause first), else the one the
   previous sentences were about. That carried guess yields to a price that already is another
   instrument's level, and to price scale: "$265" is no S&P 500 level when
   the S&P's levels are near 4,900. A level whose instrument cannot be told
   is reported as a warning, never guessed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from service.articles.instruments import Instruments, Mention
from service.models import Level, Side, format_price
from service.text import quote

CueKind = Literal["support", "resistance", "target", "level", "current", "none"]

# Characters replaced one for one, so offsets stay valid.
_NORMALIZE = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\u2009": " "}
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
# Dates and times, blanked before numbers are read.
_DATES = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?)?\b"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?\b"
    rf"|\b{_MONTH}\s+\d{{4}}\b"
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?(?![\w])"
    r"|\b[qh][1-4]\s+\d{4}\b|\bfy\s?\d{2,4}\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(\$\s?)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s?([kK])(?![\w]))?")
_NUM = r"\$?\s?\d[\d,]*(?:\.\d+)?(?:\s?k(?!\w))?"
_RANGES = tuple(
    re.compile(pattern.replace("NUM", _NUM))
    for pattern in (
        r"\bbetween\s+(?P<a>NUM)\s+(?:and|to|&)\s+(?P<b>NUM)",
        r"\brange\s+(?:of|from)\s+(?P<a>NUM)\s*(?:to|-|\u2013|\u2014)\s*(?P<b>NUM)",
        r"(?P<a>NUM)\s*(?:-|\u2013|\u2014|to)\s*(?P<b>NUM)\s+(?:range|zone|band|area|corridor|region)\b",
    )
)

# Cue phrases. The alternation is tried left to right at each position, so a
# longer phrase listed first ("stuck below", "small caps") keeps its words
# from being read as a shorter cue ("below", "caps").
_CUES: tuple[tuple[CueKind, str], ...] = (
    ("none", r"(?:small|mid|large|mega|micro)[\s-]+caps?|market\s+caps?|cap\s+rates?"),
    (
        "current",
        r"(?:sits?|sitting|sat|trades?|trading|traded|hover(?:s|ing|ed)?|stuck|stalled|pinned"
        r"|parked|chang(?:ing|ed)\s+hands|priced|quoted|consolidat(?:es|ing|ed)|closed"
        r"|last\s+(?:traded|seen))\s+(?:just\s+|right\s+|currently\s+|now\s+)?"
        r"(?:at|near|around|below|above|under|over|about|by)"
        r"|currently\s+(?:at|near|around)|spot\s+price",
    ),
    ("support", r"(?:downside|lower)\s+targets?"),
    ("resistance", r"upside\s+targets?"),
    (
        "support",
        r"support(?:s|ed|ing)?|floors?|bottom(?:s|ed)?|breakdown|lows?|demand|bids?|buyers"
        r"|undercut|los(?:e|es|ing|t)"
        r"|(?:break|breaks|breaking|close|closes|closing|drop|drops|dropping|dropped|fall|falls"
        r"|falling|fell|slip|slips|slipping|slide|slides|sliding|sink|sinks|sinking|decline"
        r"|declines|tumble|tumbles|retreat|retreats|pullback|pull\s+back|dip|dips|dipping"
        r"|plunge|plunges|flush|down)\s+(?:below|under|beneath|to|toward|towards|into|at)"
        r"|below|under|beneath",
    ),
    (
        "resistance",
        r"resistance|ceilings?|cap(?:s|ped|ping)?|breakout|highs?|tops?|topped|supply|sellers"
        r"|offers?|reclaim(?:s|ed|ing)?|clear(?:s|ed|ing)?|hurdles?|overhead|walls?"
        r"|(?:break|breaks|breaking|close|closes|closing|rally|rallies|rallying|push|pushes"
        r"|pushing|climb|climbs|climbing|rise|rises|rising|pop|pops|run|runs|surge|surges"
        r"|squeeze|move|moves|up)\s+(?:out\s+)?(?:above|over|past|to|toward|towards|through)"
        r"|above",
    ),
    ("target", r"targets?"),
    ("level", r"levels?|pivot(?:s|al)?|line\s+in\s+the\s+sand|inflection"),
)
_CUE = re.compile(
    "|".join(f"(?P<c{index}>\\b(?:{pattern})\\b)" for index, (_, pattern) in enumerate(_CUES))
)
_CUE_KINDS = {f"c{index}": kind for index, (kind, _) in enumerate(_CUES)}
_SIDES: dict[CueKind, Side] = {"support": "support", "resistance": "resistance"}
# A cue after its number is a little less likely to be about it.
_AFTER_PENALTY = 2
# How far (characters) a cue may be from its number.
_CUE_REACH = 60
# "support now sits at": a side cue this close before a current-price verb is its subject.
_SUBJECT_GAP = 12
_CONDITIONAL = re.compile(r"\b(?:if|once|should|unless|until|when|any|a)\b")

_SENTENCE_END = re.compile(r"[.!?;](?=\s|$)|\n")
_ABBREVIATIONS = frozenset("vs e.g i.e approx est inc corp co st no u.s u.k jr sr fig".split())
_CLAUSE_BREAK = re.compile(
    r",\s|;\s|\s?[\u2014\u2013]\s?|\s(?:while|whereas|but|and|or|though|although|yet|then)\s"
)
_SHORT_CLAUSE = 40

# What may follow or precede a number that is not a price.
_NOT_PRICE_AFTER = re.compile(
    r"\s?(?:%|percent\b|per\s?cent\b|pct\b|bps\b|bp\b|basis\s+points?\b)"
    r"|\s?(?:billion|bn|million|mn|mm|trillion|tn|thousand)\b"
    r"|-?\s?(?:day|week|month|year|hour|minute|min|period|session|bar|candle|point|dma|sma|ema"
    r"|ma|wk|yr)s?\b"
    r"|\s+(?:sessions?|days?|weeks?|months?|years?|quarters?|times|stocks|names|companies"
    r"|members|points?|pts|handles?|ticks?|contracts|shares|straight|consecutive|attempts?"
    r"|tests?|people|traders|analysts|funds|banks|hours?|minutes?|seconds?|bars?|candles?)\b"
    r"|\s?[ap]\.?m\b",
    re.IGNORECASE,
)
_INDICATOR = re.compile(
    r"\b(?:rsi|stoch\w*|macd|adx|cci|mfi|oscillator|reading|readings|score|rated|ranked)\b"
)
_YEAR_BEFORE = re.compile(
    r"\b(?:in|since|by|until|till|from|through|of|during|before|after|early|late|mid|year"
    r"|fiscal|circa|around)\s+$"
)
# A watch is a paragraph; a longer one is read up to here, which also bounds the work.
MAX_WATCH_CHARS = 20_000
_SCALE = 3.0  # a price more than 3x away from an instrument's known prices is not its level


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    value: float
    text: str


@dataclass(slots=True)
class _Reading:
    """What has been learnt so far while reading one watch."""

    levels: list[Level] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    prices: dict[str, list[float]] = field(default_factory=dict)  # known prices per symbol
    named: list[str] = field(default_factory=list)  # symbols named so far, in order
    subject: str | None = None  # the symbol the last sentences were about

    def add(self, symbol: str, price: float, side: Side) -> None:
        level = Level(symbol=symbol, price=price, side=side)
        if level not in self.levels:
            self.levels.append(level)
        self.note_price(symbol, price)

    def note_price(self, symbol: str, price: float) -> None:
        known = self.prices.setdefault(symbol, [])
        if price in known:
            known.remove(price)  # the latest mention goes last
        known.append(price)


def extract_levels(watch: str, instruments: Instruments) -> tuple[list[Level], list[str]]:
    """The levels a Strykr Watch names, and warnings about numbers it could not place.

    Never raises: text that names no level gives no levels.
    """
    warnings: list[str] = []
    if len(watch) > MAX_WATCH_CHARS:
        warnings.append(
            f"the Strykr Watch is {len(watch):,} characters; only the first "
            f"{MAX_WATCH_CHARS:,} are read"
        )
        watch = watch[:MAX_WATCH_CHARS]
    text = watch.translate(_NORMALIZE)
    mentions = instruments.mentions(text)
    starts = [mention.start for mention in mentions]
    blanked = _blank(text, [(m.start, m.end) for m in mentions])
    blanked = _DATES.sub(lambda match: " " * len(match.group(0)), blanked)
    lower = blanked.lower()
    reading = _Reading(warnings=warnings)
    for start, end in _sentences(blanked):
        inside = mentions[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]
        _read_sentence(text, blanked, lower, start, end, inside, reading)
        for mention in inside:
            if mention.symbol not in reading.named:
                reading.named.append(mention.symbol)
        if inside:
            reading.subject = inside[-1].symbol
    return reading.levels, reading.warnings


def _read_sentence(
    text: str,
    blanked: str,
    lower: str,
    start: int,
    end: int,
    mentions: list[Mention],
    reading: _Reading,
) -> None:
    clauses = _clauses(lower, start, end)
    numbers = list(_candidates(blanked, lower, start, end))
    consumed: set[int] = set()
    # Ranges first: "between $255 and $265" names two levels at once.
    for pattern in _RANGES:
        for match in pattern.finditer(lower, start, end):
            a_start, b_start = match.start("a"), match.start("b")
            pair = [n for n in numbers if n.start in (a_start, b_start) and n.start not in consumed]
            if len(pair) != 2:
                continue
            consumed.update(n.start for n in pair)
            low, high = sorted(pair, key=lambda n: n.value)
            window = _window(clauses, low.start, high.end)
            kind = _nearest_cue(lower, window, low.start, high.end)
            ends: tuple[tuple[_Candidate, Side], ...] = ((low, "support"), (high, "resistance"))
            for number, default in ends:
                side = _SIDES.get(kind, default)
                _place(text, number, side, start, end, clauses, mentions, reading)
    previous: tuple[tuple[int, int], Side] | None = None
    for number in numbers:
        if number.start in consumed:
            continue
        clause = _window(clauses, number.start, number.end)
        kind = _nearest_cue(lower, clause, number.start, number.end)
        if kind == "current":
            symbol = _named_before(mentions, number.start) or reading.subject
            if symbol is not None:
                reading.note_price(symbol, number.value)
            previous = None
            continue
        if kind == "none":
            if previous is not None and clause[1] - clause[0] <= _SHORT_CLAUSE:
                kind = previous[1]  # "support at $255, then $250"
            else:
                continue
        found = _side(kind, number, mentions, reading)
        if found is None:
            symbol = _named_before(mentions, number.start) or reading.subject
            reading.warnings.append(
                f"{number.text} in {_snippet(text, start, end)}: cannot tell support from "
                f"resistance; say which, or where {symbol or 'the instrument'} trades now"
            )
            continue
        _place(text, number, found, start, end, clauses, mentions, reading)
        previous = (clause, found)


def _side(
    kind: CueKind, number: _Candidate, mentions: list[Mention], reading: _Reading
) -> Side | None:
    if kind in _SIDES:
        return _SIDES[kind]
    symbol = _named_before(mentions, number.start) or reading.subject
    current = reading.prices.get(symbol or "", [])
    if current:
        return "resistance" if number.value > current[-1] else "support"
    # "Targets" with nothing to compare to are upside targets.
    return "resistance" if kind == "target" else None


def _place(
    text: str,
    number: _Candidate,
    side: Side,
    start: int,
    end: int,
    clauses: list[tuple[int, int]],
    mentions: list[Mention],
    reading: _Reading,
) -> None:
    """Find the instrument of a level and record it, or warn that it has none."""
    symbol = _named_before(mentions, number.start)
    if symbol is None:
        # Named after it: in its clause, else later in the sentence.
        clause = _window(clauses, number.start, number.end)
        after = [m for m in mentions if number.end <= m.start]
        in_clause = [m for m in after if m.start < clause[1]]
        symbol = (in_clause or after)[0].symbol if after else None
    if symbol is None:
        symbol = _carried(number.value, reading)
    if symbol is None:
        reading.warnings.append(
            f"{number.text} ({side}) in {_snippet(text, start, end)}: no instrument named; "
            "write its ticker, Name (TICKER), or add the name to [aliases]"
        )
        return
    reading.add(symbol, number.value, side)


def _carried(value: float, reading: _Reading) -> str | None:
    """The instrument of a level whose sentence names none: the one being talked about."""
    subject = reading.subject
    if subject is None:
        return None
    owners = {level.symbol for level in reading.levels if level.price == value}
    if len(owners) == 1 and subject not in owners:
        return owners.pop()  # the same price again: the same instrument's level
    known = reading.prices.get(subject, [])
    if known and not _in_scale(value, known):
        fits = [
            s for s in reading.named if s != subject and _in_scale(value, reading.prices.get(s, []))
        ]
        return fits[0] if len(fits) == 1 else None
    return subject


def _in_scale(value: float, prices: list[float]) -> bool:
    return any(price / _SCALE <= value <= price * _SCALE for price in prices)


def _named_before(mentions: list[Mention], position: int) -> str | None:
    before = [m for m in mentions if m.end <= position]
    return before[-1].symbol if before else None


def _candidates(blanked: str, lower: str, start: int, end: int) -> Iterator[_Candidate]:
    """The numbers of a sentence that could be prices."""
    for match in _NUMBER.finditer(blanked, start, end):
        m_start, m_end = match.start(), match.end()
        before = blanked[max(start, m_start - 40) : m_start]
        after = blanked[m_end : min(end, m_end + 30)]
        if before[-1:].isalnum() or before[-1:] in (".", ",", "#", "_"):
            continue  # part of a word, a version or a longer number
        if after[:1].isalpha() or after[:1] == "_":
            continue  # 3rd, 2x, 50DMA, 5m
        if before[-1:] in ("+", "-") and not before[-2:-1].isdigit():
            continue  # a change: -2.5, +1.4
        if _NOT_PRICE_AFTER.match(after):
            continue
        digits = match.group(2).replace(",", "")
        value = float(digits + (match.group(3) or ""))
        if _in_fraction(value, before, after):
            continue
        dollar = match.group(1) is not None
        if match.group(4):
            value *= 1000
        if value <= 0:
            continue
        if not dollar and _INDICATOR.search(lower[max(start, m_start - 40) : m_start]):
            continue  # RSI at 45: a reading, never a price (those carry a $ if anything)
        if (
            not dollar
            and match.group(3) is None
            and "," not in match.group(2)
            and 1900 <= value <= 2100
            and _YEAR_BEFORE.search(lower[max(start, m_start - 20) : m_start])
        ):
            continue  # in 2026, since 2022
        yield _Candidate(m_start, m_end, value, match.group(0).strip())


def _in_fraction(value: float, before: str, after: str) -> bool:
    """Whether the number is half of a score (40/100, 3/5) or a date (2/1).

    Two prices written "255/250" are neither.
    """
    numerator = re.search(r"(\d+(?:\.\d+)?)/$", before)
    denominator = re.match(r"/(\d+(?:\.\d+)?)", after)
    if denominator is not None:
        a, b = value, float(denominator.group(1))
    elif numerator is not None:
        a, b = float(numerator.group(1)), value
    else:
        return False
    score = b in (5, 10, 100) and a <= b
    date = min(a, b) <= 12 and max(a, b) <= 31
    return score or date


def _nearest_cue(lower: str, window: tuple[int, int], start: int, end: int) -> CueKind:
    """The kind of cue closest to ``start:end`` within ``window``, or ``"none"``."""
    best: tuple[int, CueKind] | None = None
    lo, hi = max(window[0], start - _CUE_REACH), min(window[1], end + _CUE_REACH)
    side_cue_end = -_CUE_REACH
    for match in _CUE.finditer(lower, lo, hi):
        kind = _CUE_KINDS[match.lastgroup or ""]
        if kind == "none":
            continue
        if kind in _SIDES:
            side_cue_end = match.end()
        elif kind == "current" and match.start() - side_cue_end <= _SUBJECT_GAP:
            continue  # "support sits at $92,500": the level is the subject
        if match.end() <= start:
            distance = start - match.end()
        elif match.start() >= end:
            distance = match.start() - end + _AFTER_PENALTY
        else:
            distance = 0
        if kind == "current" and _CONDITIONAL.search(lower, window[0], match.start()):
            # "if IWM trades below $255" is a condition, not where it trades.
            phrase = match.group(0)
            if phrase.endswith(("below", "under")):
                kind = "support"
            elif phrase.endswith(("above", "over")):
                kind = "resistance"
        if best is None or distance < best[0]:
            best = (distance, kind)
    return "none" if best is None else best[1]


def _sentences(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.group(0) == ".":
            word = re.search(r"([\w.]+)$", text[max(start, match.start() - 8) : match.start()])
            if word is not None and word.group(1).lower() in _ABBREVIATIONS:
                continue
        if match.end() > start:
            yield start, match.end()
        start = match.end()
    if start < len(text):
        yield start, len(text)


def _clauses(lower: str, start: int, end: int) -> list[tuple[int, int]]:
    clauses = []
    position = start
    for match in _CLAUSE_BREAK.finditer(lower, start, end):
        clauses.append((position, match.start()))
        position = match.end()
    clauses.append((position, end))
    return clauses


def _window(clauses: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """The span of the clauses that ``start:end`` touches."""
    touched = [c for c in clauses if c[0] < end and start < c[1]] or [(start, end)]
    return touched[0][0], touched[-1][1]


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _snippet(text: str, start: int, end: int) -> str:
    return quote(" ".join(text[start:end].split()), limit=60)


def describe(level: Level) -> str:
    """``IWM 255.00 support``, for logs."""
    return f"{level.symbol} {format_price(level.price)} {level.side}"
