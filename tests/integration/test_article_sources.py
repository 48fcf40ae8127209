"""Article sources against real parts: files in a directory, a feed on a local aiohttp server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from service.articles import Instruments
from service.articles.sources import ArticleDirectory, ArticleFeed, ArticleIntake
from service.models import Article
from tests.conftest import REPO

SEED = REPO / "articles" / "000_99540e02251797ad.txt"
IWM_TEXT = "Strykr Watch\nIWM support at $255, resistance at $265.\ndatePublished: 2026-02-02"


class RecordingSink:
    """A hand-written sink: what the sources passed on, in order."""

    def __init__(self) -> None:
        self.added: list[Article] = []
        self.removed: list[str] = []

    def add_article(self, article: Article, *, received_ns: int) -> None:
        assert received_ns > 0
        self.added.append(article)

    def remove_article(self, source: str) -> None:
        self.removed.append(source)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - polling a plain predicate
            await asyncio.sleep(0.01)


async def test_directory_reads_new_changed_and_deleted_files(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_bytes(SEED.read_bytes())
    (tmp_path / "notes.csv").write_text("not an article")
    (tmp_path / ".draft.txt").write_text(IWM_TEXT)
    sink = RecordingSink()
    intake = ArticleIntake(sink)
    directory = ArticleDirectory(tmp_path, intake, Instruments(), poll_seconds=0.05)
    directory.load()
    assert [Path(a.source).name for a in sink.added] == ["seed.txt"]
    watching = asyncio.create_task(directory.run())
    try:
        new = tmp_path / "new.txt"
        new.write_text(IWM_TEXT)
        await until(lambda: len(sink.added) == 2)
        assert [level.price for level in sink.added[1].levels] == [255.0, 265.0]

        new.write_text(IWM_TEXT.replace("$255", "$250"))
        os.utime(new, ns=(new.stat().st_atime_ns, new.stat().st_mtime_ns + 1_000_000))
        await until(lambda: len(sink.added) == 3)
        assert [level.price for level in sink.added[2].levels] == [250.0, 265.0]

        new.unlink()
        await until(lambda: sink.removed == [str(new)])
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert intake.loaded == 3


async def test_directory_rejects_bad_files_counts_them_and_keeps_going(tmp_path: Path) -> None:
    sink = RecordingSink()
    intake = ArticleIntake(sink)
    directory = ArticleDirectory(tmp_path, intake, Instruments(), poll_seconds=0.05, max_bytes=1000)
    watching = asyncio.create_task(directory.run())
    try:
        (tmp_path / "empty.txt").write_bytes(b"")
        (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00" * 10)
        (tmp_path / "huge.txt").write_bytes(b"IWM support at $255. " * 1000)
        (tmp_path / "no_watch.txt").write_text("Strykr Pulse 50/100. Nothing to watch.")
        (tmp_path / "good.txt").write_text(IWM_TEXT)
        await until(lambda: intake.rejected.total() == 3 and len(sink.added) == 2)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert dict(intake.rejected) == {"empty": 1, "binary": 1, "too_large": 1}
    by_name = {Path(article.source).name: article for article in sink.added}
    assert by_name["no_watch.txt"].levels == ()
    assert len(by_name["good.txt"].levels) == 2


class FeedServer:
    """A feed on 127.0.0.1 that honours If-None-Match and can be told to fail."""

    def __init__(self) -> None:
        self.body = json.dumps([{"url": "https://strykr.example/iwm", "text": IWM_TEXT}])
        self.failures_left = 0
        self.requests: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=503, text="busy")
        etag = f'"{hash(self.body) & 0xFFFFFFFF:x}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        return web.Response(text=self.body, content_type="application/json", headers={"ETag": etag})


@pytest.fixture
async def feed_server() -> AsyncIterator[tuple[FeedServer, str]]:
    server = FeedServer()
    app = web.Application()
    app.router.add_get("/feed", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}/feed"
    finally:
        await runner.cleanup()


async def test_feed_polls_with_conditional_get_and_reads_changes(
    feed_server: tuple[FeedServer, str],
) -> None:
    server, url = feed_server
    sink = RecordingSink()
    feed = ArticleFeed(url, ArticleIntake(sink), Instruments(), poll_seconds=0.05)
    polling = asyncio.create_task(feed.run())
    try:
        await until(lambda: feed.not_modified >= 2)
        assert [article.source for article in sink.added] == ["https://strykr.example/iwm"]
        assert "If-None-Match" not in server.requests[0]
        assert server.requests[1]["If-None-Match"]

        server.body = json.dumps(
            [{"url": "https://strykr.example/iwm", "text": IWM_TEXT.replace("$255", "$251")}]
        )
        await until(lambda: len(sink.added) == 2)
        assert sink.added[1].levels[0].price == 251.0
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)


async def test_feed_failures_back_off_and_recover(feed_server: tuple[FeedServer, str]) -> None:
    server, url = feed_server
    server.failures_left = 3
    sink = RecordingSink()
    feed = ArticleFeed(
        url, ArticleIntake(sink), Instruments(), poll_seconds=0.05, retry_initial_s=0.05
    )
    polling = asyncio.create_task(feed.run())
    try:
        await until(lambda: len(sink.added) == 1)
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
    assert feed.failures == 3


async def test_feed_that_is_unreachable_is_retried_not_fatal() -> None:
    # A port nothing listens on: bind one, note it, close it.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    feed = ArticleFeed(
        f"http://127.0.0.1:{port}/feed",
        ArticleIntake(RecordingSink()),
        Instruments(),
        retry_initial_s=0.02,
        retry_max_s=0.05,
    )
    polling = asyncio.create_task(feed.run())
    try:
        await until(lambda: feed.failures >= 3)
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
    assert polling.cancelled()


async def test_feed_reads_a_large_reply_whole(feed_server: tuple[FeedServer, str]) -> None:
    server, url = feed_server
    seed = SEED.read_text()
    server.body = json.dumps(
        [{"url": f"https://strykr.example/{index}", "text": seed} for index in range(200)]
    )
    assert len(server.body) > 1_000_000  # many TCP segments
    sink = RecordingSink()
    feed = ArticleFeed(url, ArticleIntake(sink), Instruments())
    async with aiohttp.ClientSession() as session:
        assert await feed.poll(session) == 200
    assert {len(article.levels) for article in sink.added} == {3}
