"""Where articles come from: a watched directory and an HTTP feed.

Both hand what they read to an :class:`ArticleIntake`, which logs, counts and
passes it on. Neither ever stops the service: a bad file or a failing feed is
logged, counted and tried again.

The directory is polled (``os.scandir`` every ``dir_poll_seconds``) rather
than watched with inotify: polling also works on network file systems and
container bind mounts, where file-system events often never arrive, and a
scan of a directory of articles costs microseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

import aiohttp
import structlog

from service.articles.feed import FeedItem, parse_feed
from service.articles.instruments import Instruments
from service.articles.parse import MAX_ARTICLE_BYTES, parse_article
from service.articles.settings import ArticlesConfig
from service.articles.watch_levels import describe
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import ArticleError
from service.models import Article
from service.reconnect import Link, reconnecting

ARTICLE_SUFFIXES = frozenset({".txt", ".md", ".html", ".htm"})
# A file changed this recently may still be being written: read it on the
# next scan if it has not changed again by then.
SETTLE_NS = 500_000_000
FEED_TIMEOUT_S = 30.0
MAX_FEED_BYTES = 10_000_000
RETRY_INITIAL_S = 2.0
RETRY_MAX_S = 300.0

log = structlog.get_logger("service.articles")


class ArticleSink(Protocol):
    def add_article(self, article: Article, *, received_ns: int) -> None: ...

    def remove_article(self, source: str) -> None: ...


class ArticleIntake:
    """Logs and counts every article read, and passes the usable ones to ``sink``.

    A rejected input (empty, binary, too large, unreadable) never replaces the
    article its source held before: a file caught half-written keeps its
    last good version until it is whole again.
    """

    def __init__(self, sink: ArticleSink, *, clock: Callable[[], int] = time.time_ns) -> None:
        self.sink = sink
        self.clock = clock
        self.loaded = 0
        self.rejected: Counter[str] = Counter()

    def accept(self, article: Article) -> None:
        if article.rejected is not None:
            self.reject(ArticleError(article.source, article.rejected, "; ".join(article.warnings)))
            return
        self.loaded += 1
        log.info(
            "article_loaded",
            source=article.source,
            title=article.title,
            published=article.published,
            levels=[describe(level) for level in article.levels],
        )
        if article.warnings:
            log.warning("article_warnings", source=article.source, warnings=list(article.warnings))
        self.sink.add_article(article, received_ns=self.clock())

    def reject(self, error: ArticleError) -> None:
        self.rejected[error.reason] += 1
        log.warning(
            "article_rejected", source=error.source, reason=error.reason, detail=error.detail
        )

    def remove(self, source: str) -> None:
        log.info("article_removed", source=source)
        self.sink.remove_article(source)


def read_article_file(
    path: Path, instruments: Instruments, *, max_bytes: int = MAX_ARTICLE_BYTES
) -> Article:
    """Read and parse one article file; never raises (an unreadable file comes back rejected)."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            detail = (
                f"is {size:,} bytes; articles are limited to {max_bytes:,} ([articles] max_bytes)"
            )
            return Article(source=source, rejected="too_large", warnings=(detail,))
        data = path.read_bytes()
    except OSError as error:
        return Article(source=source, rejected="unreadable", warnings=(f"cannot be read: {error}",))
    return parse_article(data, source=source, instruments=instruments, max_bytes=max_bytes)


def article_files(directory: Path) -> list[Path]:
    """The article files of ``directory``, by name; hidden and temporary files are skipped."""
    return sorted(path for path, _ in _scan(directory))


def _scan(directory: Path) -> Iterable[tuple[Path, tuple[int, int]]]:
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith((".", "~", "#")) or name.endswith("~"):
                continue  # editors' and atomic writers' temporary files
            if os.path.splitext(name)[1].lower() not in ARTICLE_SUFFIXES:
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:
                continue  # gone between listing and stat
            yield Path(entry.path), (stat.st_mtime_ns, stat.st_size)


class ArticleDirectory:
    """Polls a directory: new and changed article files are read, deleted ones forgotten."""

    def __init__(
        self,
        path: Path,
        intake: ArticleIntake,
        instruments: Instruments,
        *,
        poll_seconds: float = 1.0,
        max_bytes: int = MAX_ARTICLE_BYTES,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = path
        self._clock = clock
        self.intake = intake
        self.instruments = instruments
        self.poll_seconds = poll_seconds
        self.max_bytes = max_bytes
        self.name = "articles-dir"
        self._known: dict[Path, tuple[int, int]] = {}
        self._pending: dict[Path, tuple[int, int]] = {}

    def load(self) -> None:
        """Read every article file now (at start-up, before any tick is evaluated)."""
        self._apply(self._changes(settle=False))

    async def run(self) -> None:
        """Poll until cancelled; reading and parsing happen off the event loop."""
        while True:
            await self._clock.sleep(self.poll_seconds)
            try:
                changes = await asyncio.to_thread(self._changes, settle=True)
            except OSError as error:
                self.intake.reject(
                    ArticleError(str(self.path), "unreadable", f"cannot list directory: {error}")
                )
                continue
            self._apply(changes)

    def _changes(self, *, settle: bool) -> tuple[list[Article], list[str]]:
        now = self._clock.now_ns()
        seen: dict[Path, tuple[int, int]] = dict(_scan(self.path))
        read: list[Article] = []
        for path, signature in seen.items():
            if self._known.get(path) == signature:
                continue
            recent = now - signature[0] < SETTLE_NS
            if settle and recent and self._pending.get(path) != signature:
                self._pending[path] = signature  # still being written, perhaps
                continue
            self._pending.pop(path, None)
            self._known[path] = signature
            read.append(read_article_file(path, self.instruments, max_bytes=self.max_bytes))
        gone = [path for path in self._known if path not in seen]
        for path in gone:
            del self._known[path]
            self._pending.pop(path, None)
        return read, [str(path) for path in gone]

    def _apply(self, changes: tuple[list[Article], list[str]]) -> None:
        read, gone = changes
        for article in read:
            self.intake.accept(article)
        for source in gone:
            self.intake.remove(source)


class ArticleFeed:
    """Polls an HTTP feed of articles with conditional GETs; failures back off and retry."""

    def __init__(
        self,
        url: str,
        intake: ArticleIntake,
        instruments: Instruments,
        *,
        poll_seconds: float = 60.0,
        max_bytes: int = MAX_ARTICLE_BYTES,
        retry_initial_s: float = RETRY_INITIAL_S,
        retry_max_s: float = RETRY_MAX_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.url = url
        self._clock = clock
        self.intake = intake
        self.instruments = instruments
        self.poll_seconds = poll_seconds
        self.max_bytes = max_bytes
        self.name = "articles-feed"
        # The feed's state and its log lines: article_feed_unreachable, _disconnected, _connected.
        self.link = Link(
            source=self.name,
            url=url,
            prefix="article_feed",
            initial_s=retry_initial_s,
            maximum_s=retry_max_s,
        )
        self.not_modified = 0  # polls answered 304
        self.failures = 0  # polls that failed
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._seen: dict[str, str] = {}  # item key → digest of what was read

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is retried with backoff, a good one resets it."""
        timeout = aiohttp.ClientTimeout(total=FEED_TIMEOUT_S)

        async def session() -> None:
            async with aiohttp.ClientSession(timeout=timeout) as client:
                while True:
                    await self.poll(client)
                    if not self.link.connected:
                        self.link.up()
                    await self._clock.sleep(self.poll_seconds)

        await reconnecting(
            self.link,
            session,
            retry_on=(aiohttp.ClientError, TimeoutError, ArticleError),
            delay_after=self._count_failure,
            sleep=self._clock.sleep,
        )

    def _count_failure(self, _error: str, delay: float) -> float:
        self.failures += 1
        return delay

    async def poll(self, session: aiohttp.ClientSession) -> int:
        """Fetch the feed once; return how many new or changed articles it brought."""
        headers = {}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        async with session.get(self.url, headers=headers) as response:
            if response.status == 304:
                self.not_modified += 1
                return 0
            if response.status != 200:
                raise ArticleError(self.url, "feed_http_status", f"HTTP {response.status}")
            # read(n) returns what has arrived so far, not the whole body: read it all.
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise ArticleError(
                        self.url, "too_large", f"feed is over {MAX_FEED_BYTES:,} bytes"
                    )
            items, problems = parse_feed(
                bytes(body), content_type=response.headers.get("Content-Type"), source=self.url
            )
            etag = response.headers.get("ETag")
            last_modified = response.headers.get("Last-Modified")
        for problem in problems:
            self.intake.reject(ArticleError(self.url, "invalid_feed_item", problem))
        fresh = 0
        for item in items:
            digest = _digest(item)
            if self._seen.get(item.key) == digest:
                continue
            self._seen[item.key] = digest
            self.intake.accept(article_of(item, self.instruments, max_bytes=self.max_bytes))
            fresh += 1
        # Remembered only once the reply was read, so a failed read is fetched again in full.
        self._etag, self._last_modified = etag, last_modified
        return fresh


def article_of(item: FeedItem, instruments: Instruments, *, max_bytes: int) -> Article:
    """The article of a feed item; the feed's title, link and date win over the text's."""
    article = parse_article(
        item.text, source=item.key, instruments=instruments, url=item.url, max_bytes=max_bytes
    )
    if article.rejected is not None:
        return article
    return dataclasses.replace(
        article,
        title=item.title or article.title,
        published_ns=item.published_ns if item.published_ns is not None else article.published_ns,
    )


def _digest(item: FeedItem) -> str:
    text = "\x1f".join((item.text, item.title or "", item.url or "", str(item.published_ns)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def article_sources_of(
    settings: ArticlesConfig, aliases: Mapping[str, str], intake: ArticleIntake, clock: Clock
) -> list[ArticleDirectory | ArticleFeed]:
    """The directory and the feed of ``[articles]``, those configured."""
    instruments = Instruments(aliases)
    found: list[ArticleDirectory | ArticleFeed] = []
    if settings.dir is not None:
        found.append(
            ArticleDirectory(
                settings.dir,
                intake,
                instruments,
                poll_seconds=settings.dir_poll_seconds,
                max_bytes=settings.max_bytes,
                clock=clock,
            )
        )
    if settings.feed_url is not None:
        found.append(
            ArticleFeed(
                settings.feed_url,
                intake,
                instruments,
                poll_seconds=settings.feed_poll_seconds,
                max_bytes=settings.max_bytes,
                clock=clock,
            )
        )
    return found
