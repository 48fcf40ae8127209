"""The hub's bounds on what one client may cost, with a hand-written connection fake."""

from __future__ import annotations

import asyncio
from typing import Any

from service.hub.server import MAX_UNREAD_REPLIES, HubClient, WebsocketHub
from service.hub.settings import WebsocketHubConfig


class FakeConnection:
    """Records the close; its writer never runs, as for a client that reads nothing."""

    remote_address = ("127.0.0.1", 50000)
    transport = None

    def __init__(self) -> None:
        self.closed_with: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


class Nothing:
    def levels(self, symbols: Any) -> list[dict[str, object]]:
        return []

    def articles(self, symbols: Any) -> dict[str, dict[str, object]]:
        return {}

    def alerts_after(self, since: Any, symbols: Any, *, limit: Any = None) -> list[Any]:
        return []


async def test_client_sending_bad_messages_without_reading_replies_is_closed_1008() -> None:
    hub = WebsocketHub(WebsocketHubConfig(port=0), history=Nothing(), view=Nothing())
    connection = FakeConnection()
    client = HubClient(connection)  # type: ignore[arg-type]
    for _ in range(MAX_UNREAD_REPLIES + 10):
        hub._on_message(client, "not json")
    await asyncio.sleep(0)
    assert len(client.backlog) == MAX_UNREAD_REPLIES
    assert connection.closed_with == (1008, "too many bad messages")
    assert client.closing
    assert hub.snapshot().bad_messages == MAX_UNREAD_REPLIES + 1
