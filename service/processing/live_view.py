"""What readers see of the running engine: the levels watched, the latest articles, the symbols.

Dashboards (the hub's subscribe reply) and the HTTP API read this object;
none of them reaches into the engine. The engine task refreshes it whenever
the rules or the articles change (rare), and adds the symbols that tick for
the first time; a read is a look-up of what was computed then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, TypedDict

from service.articles.store import ArticleStore
from service.articles.tracker import AUTO_RULE_PREFIX
from service.models import (
    ArticlePayload,
    Condition,
    ConditionRule,
    Direction,
    Operand,
    RangeRule,
    Rule,
    RuleStatus,
    Side,
    Viewer,
)
from service.rules.settings import describe_rule


class LevelArticle(TypedDict):
    """The article whose level a rule watches: enough to name and link it."""

    title: str | None
    url: str | None
    published: str | None


Origin = Literal["config", "article", "api"]


class WatchedLevel(TypedDict):
    """One level being watched, as ``/api/v1/levels`` and the hub's subscribe reply give it.

    ``level`` is ``None`` when it moves (an indicator, a move within a window);
    ``basis`` then says what it is. ``status`` is the rule's: active, paused,
    done (fired with frequency = "once") or expired. ``origin`` says who set
    it: alerts.toml, an article, or the rules API (the operator's, or
    ``owner``'s own: a subscriber's, shown to that subscriber only).
    """

    rule: str
    symbol: str
    level: float | None
    direction: Direction
    side: Side
    condition: Condition
    basis: str | None
    status: RuleStatus
    origin: Origin
    owner: str | None
    article: LevelArticle | None


class RuleSummary(TypedDict):
    """One rule being watched, in a line: what the rules API lists beside the stored rules."""

    rule: str
    symbol: str
    origin: Origin
    owner: str | None
    status: RuleStatus
    description: str


# The status of a rule, as the engine knows it.
StatusOf = Callable[[Rule], RuleStatus]


class LiveView:
    """Levels, latest articles and known symbols, as of the engine's last change."""

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self._base_symbols = frozenset(symbols)
        self._levels: list[WatchedLevel] = []
        self._rules: dict[str, RuleSummary] = {}
        self._articles: dict[str, ArticlePayload] = {}
        self._article_symbols: dict[str, tuple[str, ...]] = {}
        self._ruled: frozenset[str] = frozenset()
        self._ticked: set[str] = set()
        self._symbols: frozenset[str] = self._base_symbols

    # -- written by the engine task ---------------------------------------------

    def refresh(
        self,
        rules: Sequence[Rule],
        store: ArticleStore | None,
        status: StatusOf | None = None,
        stored: frozenset[str] = frozenset(),
    ) -> None:
        """The rules, their status or the articles changed: compute what readers see.

        ``stored`` are the ids of the rules set through the rules API.
        """
        articles: dict[str, ArticlePayload] = {}
        by_reference: dict[str, tuple[str, ...]] = {}
        if store is not None:
            for symbol in store.symbols():
                article = store.latest(symbol)
                if article is not None:
                    articles[symbol] = article.attachment(symbol).to_dict()
            for article in store.articles():
                if article.symbols:
                    for reference in (article.source, article.url):
                        if reference:
                            by_reference.setdefault(reference, tuple(article.symbols))
        self._articles = articles
        self._article_symbols = by_reference
        statuses = {rule.id: "active" if status is None else status(rule) for rule in rules}
        self._levels = [
            level
            for rule in rules
            for level in _levels_of(rule, store, statuses[rule.id], rule.id in stored)
        ]
        self._rules = {
            rule.id: {
                "rule": rule.id,
                "symbol": rule.symbol,
                "origin": _origin(rule, rule.id in stored),
                "owner": rule.owner,
                "status": statuses[rule.id],
                "description": describe_rule(rule),
            }
            for rule in rules
        }
        # A subscriber's own rule does not make its symbol one the service watches for all.
        self._ruled = frozenset(rule.symbol for rule in rules if rule.owner is None) | frozenset(
            articles
        )
        self._symbols = self._base_symbols | self._ruled | self._ticked

    def saw(self, symbols: Iterable[str]) -> None:
        """``symbols`` have ticked (the engine task passes those it had not seen)."""
        self._ticked.update(symbols)
        self._symbols = self._base_symbols | self._ruled | self._ticked

    # -- read by dashboards and the API -------------------------------------------

    def levels(
        self, symbols: frozenset[str] | None, viewer: Viewer | None = None
    ) -> list[WatchedLevel]:
        """The levels being watched (of ``symbols``; ``None``: all) that ``viewer`` may see.

        ``viewer`` ``None``: every level, subscribers' own too (the operator's view).
        """
        return [
            level
            for level in self._levels
            if (symbols is None or level["symbol"] in symbols)
            and (viewer is None or viewer.sees(level["owner"]))
        ]

    def rules(self, viewer: Viewer | None = None) -> list[RuleSummary]:
        """Every rule being watched that ``viewer`` may see (``None``: all), in watch order."""
        return [r for r in self._rules.values() if viewer is None or viewer.sees(r["owner"])]

    def rule(self, rule_id: str) -> RuleSummary | None:
        """The rule of this id being watched, if any (whoever owns it)."""
        return self._rules.get(rule_id)

    def articles(self, symbols: frozenset[str] | None) -> Mapping[str, ArticlePayload]:
        """The latest article per symbol (of ``symbols``; ``None``: all), as alerts carry it."""
        if symbols is None:
            return dict(self._articles)
        return {s: self._articles[s] for s in sorted(symbols) if s in self._articles}

    def known_symbols(self) -> frozenset[str]:
        """Every symbol watched: by rules (the file's and the articles'), or having ticked."""
        return self._symbols

    def article_symbols(self, reference: str) -> tuple[str, ...] | None:
        """The symbols of the article whose URL or source is ``reference`` (``None``: none)."""
        return self._article_symbols.get(reference)


def _origin(rule: Rule, stored: bool) -> Origin:
    if rule.id.startswith(AUTO_RULE_PREFIX):
        return "article"
    return "api" if stored else "config"


def _levels_of(
    rule: Rule, store: ArticleStore | None, status: RuleStatus, stored: bool
) -> list[WatchedLevel]:
    from_article = rule.id.startswith(AUTO_RULE_PREFIX)
    origin = _origin(rule, stored)
    article: LevelArticle | None = None
    if from_article and store is not None:
        latest = store.latest(rule.symbol)
        if latest is not None:
            article = {"title": latest.title, "url": latest.url, "published": latest.published}

    def level(
        operand: Operand | None, direction: Direction, basis: str | None = None
    ) -> WatchedLevel:
        fixed = isinstance(operand, float)
        return {
            "rule": rule.id,
            "symbol": rule.symbol,
            "level": operand if isinstance(operand, float) else None,
            "direction": direction,
            "side": "support" if direction == "below" else "resistance",
            "condition": condition,
            "basis": basis if basis is not None or fixed else str(operand),
            "status": status,
            "origin": origin,
            "owner": rule.owner,
            "article": article,
        }

    if isinstance(rule, RangeRule):
        condition: Condition = "exit_channel"
        return [level(rule.low, "below"), level(rule.high, "above")]
    if not isinstance(rule, ConditionRule):
        condition = "cross_below" if rule.direction == "below" else "cross_above"
        return [level(rule.level, rule.direction)]
    condition = rule.condition
    source = None if rule.source is None else str(rule.source)
    if condition in ("moving_up", "moving_down"):
        direction: Direction = "above" if condition == "moving_up" else "below"
        return [level(None, direction, f"{condition.replace('_', ' ')} {rule.move}")]
    if rule.low is not None and rule.high is not None:
        return [level(rule.low, "below", source), level(rule.high, "above", source)]
    if condition == "crossing":
        return [level(rule.level, "below", source), level(rule.level, "above", source)]
    below = condition in ("cross_below", "less_than")
    return [level(rule.level, "below" if below else "above", source)]
