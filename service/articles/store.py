"""Every article known, and per symbol the latest one."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from service.models import Article


@dataclass(frozen=True, slots=True)
class _Entry:
    # Order: effective time, then arrival, so of two articles published at
    # the same instant the one read last wins.
    effective_ns: int
    seq: int
    article: Article


class ArticleStore:
    """Articles by source, and per symbol in order of publication.

    An article is *for* the symbols it gives levels for. Its effective time is
    ``published``, or when it was received if it carries no date. A new
    version of a source (a changed file) replaces the old one.
    """

    def __init__(self) -> None:
        self._by_source: dict[str, _Entry] = {}
        self._by_symbol: dict[str, list[_Entry]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._by_source)

    def articles(self) -> list[Article]:
        """Every article, oldest first."""
        entries = sorted(self._by_source.values(), key=lambda e: (e.effective_ns, e.seq))
        return [entry.article for entry in entries]

    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)

    def effective_times(self) -> list[int]:
        """When each article takes effect, sorted, without repeats."""
        return sorted({entry.effective_ns for entry in self._by_source.values()})

    def put(self, article: Article, *, received_ns: int) -> set[str]:
        """Store ``article`` (replacing an older version of its source).

        Returns the symbols whose latest article changed.
        """
        old = self._by_source.get(article.source)
        touched = set(article.symbols) | (set(old.article.symbols) if old else set())
        before = {symbol: self.latest(symbol) for symbol in touched}
        if old is not None:
            self._unlink(old)
        self._seq += 1
        effective = article.published_ns if article.published_ns is not None else received_ns
        entry = _Entry(effective, self._seq, article)
        self._by_source[article.source] = entry
        for symbol in article.symbols:
            bisect.insort(
                self._by_symbol.setdefault(symbol, []), entry, key=lambda e: (e.effective_ns, e.seq)
            )
        return {symbol for symbol in touched if self.latest(symbol) is not before[symbol]}

    def remove(self, source: str) -> set[str]:
        """Forget the article read from ``source``; returns the symbols whose latest changed."""
        old = self._by_source.get(source)
        if old is None:
            return set()
        before = {symbol: self.latest(symbol) for symbol in old.article.symbols}
        self._unlink(old)
        del self._by_source[source]
        return {symbol for symbol, article in before.items() if self.latest(symbol) is not article}

    def latest(self, symbol: str, at_ns: int | None = None) -> Article | None:
        """The latest article for ``symbol``; with ``at_ns``, the latest in effect at that time."""
        entries = self._by_symbol.get(symbol)
        if not entries:
            return None
        if at_ns is None:
            return entries[-1].article
        index = bisect.bisect_right(entries, at_ns, key=lambda e: e.effective_ns)
        return entries[index - 1].article if index else None

    def _unlink(self, entry: _Entry) -> None:
        for symbol in entry.article.symbols:
            entries = self._by_symbol[symbol]
            entries.remove(entry)
            if not entries:
                del self._by_symbol[symbol]
