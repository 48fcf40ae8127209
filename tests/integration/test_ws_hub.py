"""The dashboards' websocket hub, with real websocket clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.clock import SYSTEM_CLOCK, Clock
from service.delivery.recorder import AlertRecorder
from service.hub.server import WebsocketHub
from service.hub.settings import WebsocketHubConfig
from service.journal.sqlite import SqliteJournal
from service.models import AlertEvent, Tick, Viewer
from service.processing.batch import Batch
from tests.builders import alert_at, tick
from tests.clock import FakeClock
from tests.helpers import eventually

HUB = WebsocketHubConfig(port=0, tick_hz=20.0)


class Snapshot:
    def levels(
        self, symbols: frozenset[str] | None, viewer: Viewer | None = None
    ) -> list[dict[str, object]]:
        levels: list[dict[str, object]] = [
            {"rule": "iwm-below-255", "symbol": "IWM", "level": 255.0, "side": "support"},
            {"rule": "spx-above-4900", "symbol": "SPX", "level": 4900.0, "side": "resistance"},
        ]
        return [level for level in levels if symbols is None or level["symbol"] in symbols]

    def articles(self, symbols: frozenset[str] | None) -> dict[str, dict[str, object]]:
        return {"IWM": {"title": "Small caps are stuck"}} if not symbols or "IWM" in symbols else {}


class Hub:
    """A hub with a journal behind it, fed the way the engine feeds it."""

    def __init__(self, hub: WebsocketHub, recorder: AlertRecorder) -> None:
        self.hub = hub
        self.recorder = recorder

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.hub.port}"

    def alert(self, *alerts: AlertEvent) -> None:
        """As the engine task's stages do: journaled first, then published."""
        self.hub.publish(self.recorder(Batch((), alerts)))

    def ticks(self, *ticks: Tick) -> None:
        self.hub.publish(Batch(ticks, ()))


@contextlib.asynccontextmanager
async def running_hub(
    tmp_path: Path, config: WebsocketHubConfig = HUB, *, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[Hub]:
    journal = SqliteJournal(tmp_path / "alerts.db")
    hub = WebsocketHub(config, history=journal, view=Snapshot(), clock=clock)
    recorder = AlertRecorder(journal, lambda _alert: [])
    task = asyncio.create_task(hub.run())
    try:
        await asyncio.wait_for(hub.listening.wait(), 5)
        yield Hub(hub, recorder)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        journal.close()


async def subscribe(url: str, **request: Any) -> tuple[ClientConnection, dict[str, Any]]:
    client = await connect(url, open_timeout=5)
    await client.send(json.dumps({"op": "subscribe", **request}))
    return client, await receive(client)


async def receive(client: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    message = await asyncio.wait_for(client.recv(), within)
    assert isinstance(message, str), "the hub sends text frames"
    result: dict[str, Any] = json.loads(message)
    return result


async def test_subscriber_gets_levels_articles_then_only_its_symbols_alerts(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        client, hello = await subscribe(hub.url, symbols=["iwm"])
        assert hello == {
            "type": "subscribed",
            "symbols": ["IWM"],
            "levels": [
                {"rule": "iwm-below-255", "symbol": "IWM", "level": 255.0, "side": "support"}
            ],
            "articles": {"IWM": {"title": "Small caps are stuck"}},
        }
        everything, _ = await subscribe(hub.url, symbols=["*"])
        hub.alert(alert_at(1, "SPX"), alert_at(2, "IWM"))
        assert await receive(client) == {"type": "alert", "data": alert_at(2).to_dict()}
        assert [(await receive(everything))["data"]["symbol"] for _ in range(2)] == ["SPX", "IWM"]
        await client.close()
        await everything.close()


async def test_client_reconnecting_with_since_gets_exactly_the_alerts_it_missed(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        client, _ = await subscribe(hub.url, symbols=["IWM"])
        hub.alert(*(alert_at(n) for n in range(3)))
        seen = [(await receive(client))["data"]["id"] for _ in range(3)]
        await client.close()

        hub.alert(*(alert_at(n) for n in range(3, 6)), alert_at(6, "SPX"))
        again, hello = await subscribe(hub.url, symbols=["IWM"], since=seen[-1])
        assert hello["type"] == "subscribed"
        missed = [(await receive(again))["data"]["id"] for _ in range(3)]
        hub.alert(alert_at(7))
        live = await receive(again)

        assert missed == [alert_at(n).id for n in range(3, 6)]
        assert live["data"]["id"] == alert_at(7).id
        # Nothing twice and nothing of SPX came between: the next alert is the next frame.
        hub.alert(alert_at(8))
        assert (await receive(again))["data"]["id"] == alert_at(8).id
        await again.close()


async def test_since_an_unknown_alert_says_so_and_goes_on_live(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        client, _ = await subscribe(hub.url, symbols=["IWM"], since="0123456789abcdef0123")
        error = await receive(client)
        assert error["type"] == "error"
        assert "0123456789abcdef0123" in error["message"]
        hub.alert(alert_at(1))
        assert (await receive(client))["type"] == "alert"
        await client.close()


async def test_client_that_never_reads_delays_no_other_client_by_more_than_50_ms(
    tmp_path: Path,
) -> None:
    config = replace(HUB, max_pending_alerts=100_000, write_limit_bytes=64 * 1024)
    async with running_hub(tmp_path, config) as hub:
        stuck, _ = await subscribe(hub.url, symbols=["*"])
        stuck.transport.pause_reading()  # reads nothing from now on
        readers = [(await subscribe(hub.url, symbols=["IWM"]))[0] for _ in range(3)]
        # Big alerts fill the stuck client's socket buffers within a few rounds.
        alerts = [replace(alert_at(n), rule="x" * 60_000) for n in range(300)]
        delays: list[float] = []
        for alert in alerts:
            sent = time.perf_counter()
            hub.alert(alert)
            for reader in readers:
                message = await receive(reader)
                assert message["data"]["id"] == alert.id
            delays.append(time.perf_counter() - sent)
        stats = dataclasses.asdict(hub.hub.snapshot())

        assert max(delays) < 0.050, f"slowest alert took {max(delays) * 1000:.1f} ms"
        assert stats["queued_alerts"] > 0, "the stuck client's alerts must have queued"
        assert stats["slow_disconnects"] == 0
        for reader in readers:
            await reader.close()
        stuck.transport.abort()


async def test_client_past_its_pending_bound_is_closed_with_1013(tmp_path: Path) -> None:
    config = replace(HUB, max_pending_alerts=5, write_limit_bytes=1024)
    async with running_hub(tmp_path, config) as hub:
        stuck, _ = await subscribe(hub.url, symbols=["IWM"])
        stuck.transport.pause_reading()
        for n in range(300):
            hub.alert(replace(alert_at(n), rule="x" * 60_000))
            await asyncio.sleep(0)
        assert dataclasses.asdict(hub.hub.snapshot())["slow_disconnects"] == 1
        stuck.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as closed:
            await drain(stuck)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013


async def test_ticks_are_coalesced_to_the_latest_price_at_each_flush(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_hub(tmp_path, replace(HUB, tick_hz=5.0), clock=clock) as hub:
        ticking, _ = await subscribe(hub.url, symbols=["IWM"], ticks=True)
        quiet, _ = await subscribe(hub.url, symbols=["IWM"])
        for n in range(1, 501):
            hub.ticks(tick(250 + n / 100, seconds=n))
            if n % 100 == 0:
                await flush(hub, clock)
        frames = [await receive(ticking) for _ in range(5)]
        # One frame per flush, with the latest price: 100 ticks in, 1 frame out.
        assert [frame["type"] for frame in frames] == ["tick"] * 5
        assert [frame["data"]["price"] for frame in frames] == [251.0, 252.0, 253.0, 254.0, 255.0]
        assert frames[-1]["data"] == {"symbol": "IWM", "price": 255.0, "at": tick(255, 500).at}
        # The one that asked for no ticks got none: the alert sent now is its first frame.
        hub.alert(alert_at(1))
        assert (await receive(quiet))["type"] == "alert"
        assert (await receive(ticking))["type"] == "alert"
        await ticking.close()
        await quiet.close()


async def flush(hub: Hub, clock: FakeClock) -> None:
    """One tick interval passes: the hub flushes once."""
    await eventually(lambda: clock.next_due_s() is not None, what="the hub waiting to flush")
    flushes = hub.hub.flushes
    clock.advance(clock.next_due_s() or 0.0)
    await eventually(lambda: hub.hub.flushes > flushes, what="a flush")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"op": "unsubscribe"}', 'unknown op "unsubscribe"'),
        ('{"op": "subscribe"}', "symbols: expected a list"),
        ('{"op": "subscribe", "symbols": ["bad symbol!"]}', "symbols: expected a symbol"),
        ('{"op": "subscribe", "symbols": ["IWM"], "ticks": "yes"}', "ticks: expected true"),
        ('{"op": "subscribe", "symbols": ["IWM"], "since": 5}', "since: expected the id"),
        ('{"op": "subscribe", "symbols": ["IWM"], "extra": 1}', 'unknown key "extra"'),
        (b"\x00\x01", "send JSON text frames"),
    ],
)
async def test_malformed_client_message_gets_an_error_and_the_connection_lives(
    tmp_path: Path, message: str | bytes, expected: str
) -> None:
    async with running_hub(tmp_path) as hub:
        client = await connect(hub.url)
        await client.send(message)
        error = await receive(client)
        assert error["type"] == "error"
        assert expected in error["message"]
        await client.send(json.dumps({"op": "subscribe", "symbols": ["IWM"]}))
        assert (await receive(client))["type"] == "subscribed"
        assert dataclasses.asdict(hub.hub.snapshot())["bad_messages"] == 1
        await client.close()


async def test_frame_over_64_kib_is_refused(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        client = await connect(hub.url, max_size=None)
        await client.send("x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(client)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009  # message too big


async def test_with_tokens_a_client_without_one_is_refused_401(tmp_path: Path) -> None:
    config = replace(HUB, tokens=("s3cret",))
    async with running_hub(tmp_path, config) as hub:
        for url, headers in (
            (hub.url, {}),
            (hub.url + "/?token=wrong", {}),
            (hub.url, {"Authorization": "Bearer wrong"}),
        ):
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, additional_headers=headers, open_timeout=5)
            assert refused.value.response.status_code == 401
        by_header, _ = await subscribe_with(hub.url, {"Authorization": "Bearer s3cret"})
        by_query, _ = await subscribe_with(hub.url + "/?token=s3cret", {})
        assert dataclasses.asdict(hub.hub.snapshot())["refused"] == 3
        await by_header.close()
        await by_query.close()


async def test_allowed_origins_refuse_other_browser_origins(tmp_path: Path) -> None:
    config = replace(HUB, allowed_origins=("https://desk.example",))
    async with running_hub(tmp_path, config) as hub:
        with pytest.raises(InvalidStatus) as refused:
            await connect(hub.url, origin="https://evil.example", open_timeout=5)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        allowed = await connect(hub.url, origin="https://desk.example", open_timeout=5)  # type: ignore[arg-type]
        await allowed.close()


async def subscribe_with(
    url: str, headers: dict[str, str]
) -> tuple[ClientConnection, dict[str, Any]]:
    client = await connect(url, additional_headers=headers, open_timeout=5)
    await client.send(json.dumps({"op": "subscribe", "symbols": ["IWM"]}))
    return client, await receive(client)


async def drain(client: ClientConnection) -> None:
    """Read until the connection closes."""
    for _ in range(10_000):
        await receive(client)


async def test_a_hub_whose_run_failed_listens_again_when_started_over(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "alerts.db")
    hub = WebsocketHub(HUB, history=journal, view=Snapshot())
    flush = hub.fanout.flush_ticks

    def broken() -> object:
        raise RuntimeError("a bug in the flush")

    hub.fanout.flush_ticks = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug in the flush"):
        await asyncio.wait_for(hub.run(), 5)
    assert not hub.listening.is_set()
    hub.fanout.flush_ticks = flush  # type: ignore[method-assign]
    task = asyncio.create_task(hub.run())  # as the supervisor restarts it
    try:
        await asyncio.wait_for(hub.listening.wait(), 5)
        client, hello = await subscribe(f"ws://127.0.0.1:{hub.port}", symbols=["IWM"])
        assert hello["type"] == "subscribed"
        await client.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        journal.close()
