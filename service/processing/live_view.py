"""What readers see of the running engine: the levels watched, the latest articles, the symbols.

Dashboards (the hub's subscribe reply) and the HTTP API read this object;
none of them reaches into the engine. The engine task refreshes it whenever
the rules or the articles change (rare), and adds the symbols that tick for
the first time; a read is a look-up of what was computed then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, TypedDict

from service.articles.store import ArticleStore
from service.articles.tracker import AUTO_RULE_PREFIX
from service.models import ArticlePayload, Direction, RangeRule, Rule, Side


class LevelArticle(TypedDict):
    """The article whose level a rule watches: enough to name and link it."""

    title: str | None
    url: str | None
    published: str | None


class WatchedLevel(TypedDict):
    """One level being watched, as ``/api/v1/levels`` and the hub's subscribe reply give it."""

    rule: str
    symbol: str
    level: float
    direction: Direction
    side: Side
    origin: Literal["config", "article"]
    article: LevelArticle | None


class LiveView:
    """Levels, latest articles and known symbols, as of the engine's last change."""

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self._base_symbols = frozenset(symbols)
        self._levels: list[WatchedLevel] = []
        self._articles: dict[str, ArticlePayload] = {}
        self._article_symbols: dict[str, tuple[str, ...]] = {}
        self._ruled: frozenset[str] = frozenset()
        self._ticked: set[str] = set()
        self._symbols: frozenset[str] = self._base_symbols

    # -- written by the engine task ---------------------------------------------

    def refresh(self, rules: Sequence[Rule], store: ArticleStore | None) -> None:
        """The rules watched and the articles known have changed: compute what readers see."""
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
        self._levels = [level for rule in rules for level in _levels_of(rule, store)]
        self._ruled = frozenset(rule.symbol for rule in rules) | frozenset(articles)
        self._symbols = self._base_symbols | self._ruled | self._ticked

    def saw(self, symbols: Iterable[str]) -> None:
        """``symbols`` have ticked (the engine task passes those it had not seen)."""
        self._ticked.update(symbols)
        self._symbols = self._base_symbols | self._ruled | self._ticked

    # -- read by dashboards and the API -------------------------------------------

    def levels(self, symbols: frozenset[str] | None) -> list[WatchedLevel]:
        """The levels being watched (of ``symbols``; ``None``: all)."""
        if symbols is None:
            return list(self._levels)
        return [level for level in self._levels if level["symbol"] in symbols]

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


def _levels_of(rule: Rule, store: ArticleStore | None) -> list[WatchedLevel]:
    sides = rule.sides() if isinstance(rule, RangeRule) else (rule,)
    from_article = rule.id.startswith(AUTO_RULE_PREFIX)
    article: LevelArticle | None = None
    if from_article and store is not None:
        latest = store.latest(rule.symbol)
        if latest is not None:
            article = {"title": latest.title, "url": latest.url, "published": latest.published}
    return [
        {
            "rule": side.id,
            "symbol": side.symbol,
            "level": side.level,
            "direction": side.direction,
            "side": "support" if side.direction == "below" else "resistance",
            "origin": "article" if from_article else "config",
            "article": article,
        }
        for side in sides
    ]
