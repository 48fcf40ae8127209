"""The domain model: plain, typed, immutable value objects.

Nothing here does I/O. Instants are ``int`` nanoseconds since the epoch (see
:mod:`service.timestamps`); prices and volumes are ``float``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Literal, TypedDict, get_args

from service.timestamps import format_timestamp

Direction = Literal["below", "above"]
AlertKind = Literal[
    "break_below",
    "break_above",
    "above",
    "below",
    "enter_channel",
    "inside_channel",
    "outside_channel",
    "moving_up",
    "moving_down",
    "stale_feed",
]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
# What a rule watches for (docs/rules.md says what each means, clause by clause).
Condition = Literal[
    "cross_below",
    "cross_above",
    "crossing",
    "greater_than",
    "less_than",
    "enter_channel",
    "exit_channel",
    "inside_channel",
    "outside_channel",
    "moving_up",
    "moving_down",
]
CONDITIONS: tuple[Condition, ...] = get_args(Condition)
# How often a rule may fire: after every new crossing ("every_time", with the cooldown),
# once and then never again ("once"), or at most once per bar of the rule's bar ("once_per_bar").
# alerts.toml's "once_per_bar_close" is trigger = "bar_close" with "every_time".
Frequency = Literal["every_time", "once", "once_per_bar"]
# Which ticks a rule looks at: all ("any"), those of its market's regular hours, or of
# its regular and extended hours.
Session = Literal["any", "regular", "extended"]
# What a rule is now: "done" fired with frequency = "once"; "expired" is past its expires.
RuleStatus = Literal["active", "paused", "done", "expired"]
RULE_STATUSES: tuple[RuleStatus, ...] = get_args(RuleStatus)
# Indicators a rule may compare with: of bars (sma, ema, rsi, sma_volume) or of a window
# of ticks (vwap, high, low).
IndicatorName = Literal["sma", "ema", "rsi", "sma_volume", "vwap", "high", "low"]
BAR_INDICATORS: frozenset[str] = frozenset({"sma", "ema", "rsi", "sma_volume"})
# Alerts about the service's feeds, not the market: sent only to subscribers who ask
# for them by kind (ops), and to dashboards, webhooks, MQTT out and metrics.
OPS_KINDS: frozenset[str] = frozenset({"stale_feed"})
Trigger = Literal["tick", "bar_close"]

KIND_OF_DIRECTION: dict[Direction, AlertKind] = {"below": "break_below", "above": "break_above"}
# (source, token): what a source gets back once the tick it put is durably evaluated (an
# MQTT message id to acknowledge, a file row to resume after).
Receipt = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One trade or quote of one instrument.

    Build ticks from untrusted input with :func:`service.streams.decode.parse_tick`,
    which guarantees a non-empty upper-case symbol and a finite positive price.
    """

    symbol: str
    price: float
    ts_ns: int
    volume: float | None = None
    bid: float | None = None
    ask: float | None = None

    @property
    def at(self) -> str:
        return format_timestamp(self.ts_ns)


@dataclass(frozen=True, slots=True)
class Indicator:
    """An indicator of one symbol: ``sma(20, "5m")`` is the mean close of its last 20 5 m bars.

    ``period`` counts bars (sma, ema, rsi, sma_volume; ``None`` for the others);
    ``span`` is the bar interval, or the window of ticks (vwap, high, low).
    """

    name: IndicatorName
    span: str
    period: int | None = None

    def __str__(self) -> str:
        if self.period is None:
            return f'{self.name}("{self.span}")'
        return f'{self.name}({self.period}, "{self.span}")'

    @property
    def of_bars(self) -> bool:
        return self.name in BAR_INDICATORS


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeConfirm:
    """``volume(bar) > ratio * sma_volume(period, bar)``: a break counts only with volume."""

    bar: str
    ratio: float
    period: int

    def __str__(self) -> str:
        return f'volume("{self.bar}") > {self.ratio:g} * sma_volume({self.period}, "{self.bar}")'


# A level: a fixed price, or an indicator's value as it moves.
Operand = float | Indicator


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSettings:
    """When a break counts, shared by every rule type.

    ``confirm_ticks`` consecutive ticks beyond the level, lasting at least
    ``confirm_seconds``; the rule re-arms only on a tick at least
    ``hysteresis`` back on the safe side, and fires at most once per
    ``cooldown_seconds``. With ``trigger = "bar_close"`` the same rules apply to
    the closes of ``bar`` bars instead of to ticks.
    """

    id: str
    symbol: str
    confirm_ticks: int = 1
    confirm_seconds: float = 0.0
    hysteresis: float = 0.0
    cooldown_seconds: float = 0.0
    trigger: Trigger = "tick"
    bar: str | None = None
    frequency: Frequency = "every_time"
    # The first instant (tick time) at which the rule no longer fires; None: never.
    expires_ns: int | None = None
    # Starts paused: it watches nothing until resumed.
    paused: bool = False
    session: Session = "any"
    volume: VolumeConfirm | None = None
    # The subscriber whose rule it is (set through the rules API); None: the operator's
    # or an article's. Its alerts go to that subscriber only. Not part of the checkpoint
    # key: the id already tells rules apart.
    owner: str | None = field(default=None, repr=False)

    @property
    def lifecycle(self) -> tuple[Frequency, int | None, bool, Session, VolumeConfirm | None]:
        """The settings beyond today's level rules: part of the rule's checkpoint key."""
        return self.frequency, self.expires_ns, self.paused, self.session, self.volume


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelRule(RuleSettings):
    """Alert when ``symbol`` breaks ``level`` in ``direction``."""

    level: float
    direction: Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeRule(RuleSettings):
    """Alert on a breakdown below ``low`` or a breakout above ``high``.

    It behaves exactly as two level rules with the same id and settings; see
    :meth:`sides`.
    """

    low: float
    high: float

    def sides(self) -> tuple[LevelRule, LevelRule]:
        return self._side(self.low, "below"), self._side(self.high, "above")

    def _side(self, level: float, direction: Direction) -> LevelRule:
        return LevelRule(
            id=self.id,
            symbol=self.symbol,
            level=level,
            direction=direction,
            confirm_ticks=self.confirm_ticks,
            confirm_seconds=self.confirm_seconds,
            hysteresis=self.hysteresis,
            cooldown_seconds=self.cooldown_seconds,
            trigger=self.trigger,
            bar=self.bar,
            frequency=self.frequency,
            expires_ns=self.expires_ns,
            paused=self.paused,
            session=self.session,
            volume=self.volume,
            owner=self.owner,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionRule(RuleSettings):
    """Every other condition, and fixed-level ones compared with an indicator.

    ``source`` is what is compared (``None``: the tick's price; or an
    indicator, e.g. ``rsi(14, "5m")``); ``level`` what it is compared with
    (cross_*, crossing, greater_than, less_than); ``low`` and ``high`` bound a
    channel; a move is ``percent`` or ``amount`` within ``window``.
    """

    condition: Condition
    source: Indicator | None = None
    level: Operand | None = None
    low: Operand | None = None
    high: Operand | None = None
    percent: float | None = None
    amount: float | None = None
    window: str | None = None

    @property
    def move(self) -> str:
        """A move's size and window, for people: ``2 % in 15m``, ``1.50 in 5m``."""
        size = (
            f"{self.percent:g} %" if self.percent is not None else format_price(self.amount or 0.0)
        )
        return f"{size} in {self.window}"


def show_operand(operand: Operand | None) -> str:
    """A level for people: a price as prices are shown, an indicator as it is written."""
    return format_price(operand) if isinstance(operand, float) else str(operand)


Rule = LevelRule | RangeRule | ConditionRule


Side = Literal["support", "resistance"]
Bias = Literal["bearish", "bullish", "neutral"]

DIRECTION_OF_SIDE: dict[Side, Direction] = {"support": "below", "resistance": "above"}


class LevelPayload(TypedDict):
    """A level as alerts carry it, on the wire and in the journal."""

    symbol: str
    price: float
    side: Side


class ArticlePayload(TypedDict):
    """The article an alert carries (see :class:`AttachedArticle`)."""

    title: str | None
    url: str | None
    published: str | None
    pulse: int | None
    threat_level: int | None
    bias: Bias | None
    take: str | None
    levels: list[LevelPayload]


class AlertPayload(TypedDict):
    """The ALERT object: what every channel sends and the journal keeps (docs/protocol.md).

    Made in one place, :meth:`AlertEvent.to_dict`; channels read it typed.
    """

    id: str
    rule: str
    symbol: str
    kind: AlertKind
    level: float
    price: float
    at: str
    trigger: Trigger
    bar: str | None
    article: ArticlePayload | None
    basis: str | None
    owner: str | None
    headline: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    """A price level an article names: ``IWM 255 support``."""

    symbol: str
    price: float
    side: Side

    def to_dict(self) -> LevelPayload:
        return {"symbol": self.symbol, "price": self.price, "side": self.side}


@dataclass(frozen=True, slots=True, kw_only=True)
class Citation:
    """One entry of an article's "Sources" list."""

    title: str
    snippet: str | None = None
    site: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "snippet": self.snippet, "site": self.site}


@dataclass(frozen=True, slots=True, kw_only=True)
class Article:
    """A parsed Strykr analysis (see :func:`service.articles.parse_article`).

    ``source`` says where it was read (a file path or a feed item's URL) and
    identifies it: a changed file is a new version of the same article.
    ``rejected`` is a reason token when the input was no article at all
    (``empty``, ``binary``, ``too_large``); ``warnings`` say, for people, what
    the parser could not use.
    """

    source: str
    title: str | None = None
    url: str | None = None
    published_ns: int | None = None
    pulse: int | None = None
    threat_level: int | None = None
    bias: Bias | None = None
    summary: str | None = None
    watch: str | None = None
    take: str | None = None
    tags: tuple[str, ...] = ()
    sources: tuple[Citation, ...] = ()
    levels: tuple[Level, ...] = ()
    warnings: tuple[str, ...] = ()
    rejected: str | None = None

    @property
    def published(self) -> str | None:
        return format_published(self.published_ns)

    @property
    def symbols(self) -> list[str]:
        """The symbols the article gives levels for, in order of first mention."""
        return list(dict.fromkeys(level.symbol for level in self.levels))

    def levels_of(self, symbol: str) -> tuple[Level, ...]:
        return tuple(level for level in self.levels if level.symbol == symbol)

    def attachment(self, symbol: str) -> AttachedArticle:
        """What an alert on ``symbol`` carries of this article."""
        return AttachedArticle(
            title=self.title,
            url=self.url,
            published_ns=self.published_ns,
            pulse=self.pulse,
            threat_level=self.threat_level,
            bias=self.bias,
            take=self.take,
            levels=self.levels_of(symbol),
        )

    def to_dict(self) -> dict[str, object]:
        """Every field, as ``strykr-alerts article`` prints it."""
        return {
            "source": self.source,
            "title": self.title,
            "url": self.url,
            "published": self.published,
            "pulse": self.pulse,
            "threat_level": self.threat_level,
            "bias": self.bias,
            "summary": self.summary,
            "watch": self.watch,
            "take": self.take,
            "tags": list(self.tags),
            "sources": [citation.to_dict() for citation in self.sources],
            "levels": [level.to_dict() for level in self.levels],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachedArticle:
    """The latest article on an alert's symbol, as the alert carries it."""

    title: str | None
    url: str | None
    published_ns: int | None
    pulse: int | None
    threat_level: int | None
    bias: Bias | None
    take: str | None
    levels: tuple[Level, ...]

    def to_dict(self) -> ArticlePayload:
        return {
            "title": self.title,
            "url": self.url,
            "published": format_published(self.published_ns),
            "pulse": self.pulse,
            "threat_level": self.threat_level,
            "bias": self.bias,
            "take": self.take,
            "levels": [level.to_dict() for level in self.levels],
        }


def format_published(ts_ns: int | None) -> str | None:
    """An article's time, to the second: ``2026-02-02T03:45:00Z`` (``None`` if it has none)."""
    return None if ts_ns is None else format_timestamp(ts_ns)[:19] + "Z"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who reads alerts or levels: what is for everyone, and ``subscriber``'s own (if any).

    A subscriber's own rules, and their alerts, reach that subscriber only.
    """

    subscriber: str | None = None

    def sees(self, owner: str | None) -> bool:
        return owner is None or owner == self.subscriber


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertEvent:
    """A rule fired. ``price`` and ``ts_ns`` are those of the tick (or bar close) that fired it.

    A ``stale_feed`` alert is the service's own: ``level`` is the silence, in
    seconds, that fired it, ``price`` the symbol's last price, ``ts_ns`` when it fired.
    """

    id: str
    rule: str
    symbol: str
    kind: AlertKind
    level: float
    price: float
    ts_ns: int
    trigger: Trigger = "tick"
    bar: str | None = None
    article: AttachedArticle | None = None
    # What the level is when it is not a fixed price, for people: 'sma(20, "5m")',
    # "channel 255.00-265.00", "2 % in 15m"; None for a fixed level.
    basis: str | None = None
    # The subscriber whose own rule fired (only they get it); None: a rule for everyone.
    owner: str | None = None

    @property
    def at(self) -> str:
        return format_timestamp(self.ts_ns)

    def headline(self) -> str:
        """One line for people: ``IWM broke below 255.00 at 254.60``."""
        if self.kind == "stale_feed":
            last = "none since start-up" if self.price == 0 else f"last {format_price(self.price)}"
            return f"{self.symbol} feed stale: no tick for {self.level:g} s ({last})"
        closing = f" ({self.bar} close)" if self.trigger == "bar_close" else ""
        level = format_price(self.level)
        what = _HEADLINE[self.kind]
        if self.kind in ("moving_up", "moving_down"):
            reference = f"{self.basis} from {level}"
        elif self.kind in ("enter_channel", "inside_channel", "outside_channel"):
            reference = str(self.basis)
        else:
            reference = level if self.basis is None else f"{level}, {self.basis}"
        return f"{self.symbol} {what} {reference} at {format_price(self.price)}{closing}"

    def to_dict(self) -> AlertPayload:
        """The alert as every channel sends it (and as ``replay`` prints it)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "symbol": self.symbol,
            "kind": self.kind,
            "level": self.level,
            "price": self.price,
            "at": self.at,
            "trigger": self.trigger,
            "bar": self.bar,
            "article": None if self.article is None else self.article.to_dict(),
            "basis": self.basis,
            "owner": self.owner,
            "headline": self.headline(),
        }


_HEADLINE: dict[AlertKind, str] = {
    "break_below": "broke below",
    "break_above": "broke above",
    "below": "is below",
    "above": "is above",
    "enter_channel": "entered the",
    "inside_channel": "is inside the",
    "outside_channel": "is outside the",
    "moving_up": "moved up",
    "moving_down": "moved down",
    "stale_feed": "feed stale",
}


def format_price(price: float) -> str:
    """A price for people, never longer than 16 characters, whatever it is.

    Two decimals, or as many as the price really has, up to 10 significant
    digits: 255.00, 254.60, 1.08345, 0.00012345. From a billion up and below
    0.0001, 6 significant digits with an exponent: 1.23457e+12, 1e+308.
    """
    if not math.isfinite(price):
        return str(price)
    magnitude = abs(price)
    if magnitude >= 1e9 or 0 < magnitude < 1e-4:
        return f"{price:.6g}"
    text = f"{price:.2f}"
    if float(text) == price:
        return text
    digits = f"{price:.10g}"
    # Fewer than two decimals means the price is within rounding of text: keep that.
    return digits if len(digits.partition(".")[2]) > 2 else text


def alert_id(
    *, rule: str, kind: AlertKind, level: float, symbol: str, ts_ns: int, price: float
) -> str:
    """A deterministic id: the same rule firing on the same tick always gets the same id.

    Replays and restarts re-detect the same alerts; downstream stages drop the
    repeats by this id.
    """
    key = f"{rule}\x1f{kind}\x1f{level!r}\x1f{symbol}\x1f{ts_ns}\x1f{price!r}"
    return hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
