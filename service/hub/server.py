"""The websocket hub traders' dashboards connect to (the ``websockets`` server).

Protocol, JSON text frames (docs/protocol.md has the full reference)::

    client → {"op": "subscribe", "symbols": ["IWM"], "ticks": true, "since": "<alert id>"}
    server → {"type": "subscribed", "symbols": [...], "levels": [...], "articles": {...}}
             {"type": "alert", "data": ALERT}            every journaled alert after "since",
                                                         then live ones
             {"type": "tick", "data": {"symbol", "price", "at"}}   at most tick_hz per symbol
             {"type": "error", "message": "..."}         a bad client message; never fatal

A slow client never slows the engine or the other clients. Each frame is
encoded once; a client whose socket takes it at once gets it written
directly (as ``websockets.broadcast`` would), while a client with a full
socket buffer gets alerts queued, up to ``max_pending_alerts``, and no ticks
(the next flush sends it the latest ones). Past that bound it is closed with
1013 ("try again later"), and reconnects with ``since`` to miss nothing.

Connections are bounded before a byte is read: at most
``max_connections_per_client`` per address (more are answered 429 and
closed), an opening handshake done within ``open_timeout_seconds``, and a
``subscribe`` within ``subscribe_timeout_seconds`` (else closed with 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from service.connection_limit import ConnectionLimit, peer_address
from service.errors import ListenError, RequestError, UnknownAlertError
from service.hub.settings import WebsocketHubConfig
from service.models import AlertEvent, AlertPayload, ArticlePayload, Tick
from service.processing.batch import Batch
from service.processing.live_view import WatchedLevel
from service.symbols import normalize_symbol
from service.text import first_line, quote

log = structlog.get_logger("service.ws_hub")

MAX_SYMBOLS = 256
MAX_ALERT_ID_CHARS = 64
SLOW_CLIENT_CODE = 1013  # "Try Again Later"
POLICY_VIOLATION_CODE = 1008
# Replies (the subscribe answer, history, errors) waiting for a client that reads none.
MAX_UNREAD_REPLIES = 64
CLOSE_TIMEOUT_S = 2.0


class HubReadModel(Protocol):
    """What a new subscriber is told first: the levels watched and the latest articles."""

    def levels(self, symbols: frozenset[str] | None) -> list[WatchedLevel]: ...

    def articles(self, symbols: frozenset[str] | None) -> Mapping[str, ArticlePayload]: ...


class AlertHistory(Protocol):
    def alerts_after(
        self, since: str | None, symbols: Iterable[str] | None, *, limit: int | None = None
    ) -> list[AlertPayload]: ...


class ClientMessageError(RequestError):
    """A client sent something the protocol does not allow; the message says what."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HubStats:
    """The hub's counters at one moment."""

    clients: int
    queued_alerts: int  # alerts waiting for slow clients
    alerts_published: int
    slow_disconnects: int  # closed with 1013
    ticks_dropped: int  # not sent to a client whose socket was full
    bad_messages: int
    refused: int  # without a valid token
    idle_disconnects: int  # closed with 1008 for not subscribing
    over_connection_limit: int  # answered 429


class HubClient:
    """One connected dashboard: what it wants, and what it is owed."""

    __slots__ = (
        "backlog",
        "closing",
        "connection",
        "pending",
        "subscribed",
        "symbols",
        "ticks",
        "wake",
        "writing",
    )

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.subscribed = False
        self.symbols: frozenset[str] | None = frozenset()  # None: every symbol
        self.ticks = False
        self.backlog: deque[bytes] = deque()  # the subscribe reply and its history
        self.pending: deque[bytes] = deque()  # live alerts that could not be written at once
        self.wake = asyncio.Event()
        self.writing = False
        self.closing = False

    def takes_now(self, limit: int) -> bool:
        """Whether a frame can be written now without queueing behind others."""
        if self.writing or self.backlog or self.pending or self.closing:
            return False
        transport = self.connection.transport
        return transport is not None and transport.get_write_buffer_size() <= limit


def parse_subscribe(text: str | bytes) -> tuple[frozenset[str] | None, bool, str | None]:
    """A subscribe message → (symbols, ticks, since); ``None`` symbols means all.

    Raises :class:`ClientMessageError` saying what is wrong.
    """
    if isinstance(text, bytes):
        raise ClientMessageError("send JSON text frames, not binary ones")
    try:
        message = json.loads(text)
    except ValueError as error:
        raise ClientMessageError(f"not JSON: {first_line(error, 100)}") from None
    if not isinstance(message, dict):
        raise ClientMessageError('expected a JSON object such as {"op": "subscribe", ...}')
    op = message.get("op")
    if op != "subscribe":
        shown = quote(op) if isinstance(op, str) else json.dumps(op)
        raise ClientMessageError(f'unknown op {shown}; the only op is "subscribe"')
    unknown = sorted(set(message) - {"op", "symbols", "ticks", "since"})
    if unknown:
        raise ClientMessageError(f"unknown key {quote(unknown[0])} in subscribe")
    symbols = message.get("symbols")
    if not isinstance(symbols, list) or not symbols or len(symbols) > MAX_SYMBOLS:
        raise ClientMessageError(
            f'symbols: expected a list of 1 to {MAX_SYMBOLS} symbols, or ["*"] for all'
        )
    wanted: set[str] = set()
    for item in symbols:
        if item == "*":
            return _rest(message, None)
        try:
            wanted.add(normalize_symbol(item))
        except ValueError as error:
            raise ClientMessageError(f"symbols: {error}") from None
    return _rest(message, frozenset(wanted))


def _rest(
    message: dict[str, Any], symbols: frozenset[str] | None
) -> tuple[frozenset[str] | None, bool, str | None]:
    ticks = message.get("ticks", False)
    if not isinstance(ticks, bool):
        raise ClientMessageError("ticks: expected true or false")
    since = message.get("since")
    if since is not None and (
        not isinstance(since, str) or not 0 < len(since) <= MAX_ALERT_ID_CHARS
    ):
        raise ClientMessageError("since: expected the id of the last alert you received")
    return symbols, ticks, since


def encode(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


class WebsocketHub:
    """Serves dashboards: a snapshot on subscribe, missed alerts, then live alerts and ticks."""

    def __init__(
        self, config: WebsocketHubConfig, *, history: AlertHistory, view: HubReadModel
    ) -> None:
        self.config = config
        self.history = history
        self.view = view
        self.port: int | None = None  # once listening (config.port 0 picks a free one)
        self.listening = asyncio.Event()
        self._server: Server | None = None
        self._clients: set[HubClient] = set()
        self._by_symbol: dict[str, set[HubClient]] = {}
        self._everything: set[HubClient] = set()
        self._latest: dict[str, Tick] = {}  # ticks not yet flushed, latest per symbol
        self.alerts_published = 0
        self.slow_disconnects = 0
        self.ticks_dropped = 0
        self.bad_messages = 0
        self.refused = 0
        self.idle_disconnects = 0
        self.connections = ConnectionLimit(config.max_connections_per_client)

    # The engine's side: synchronous, called from the engine task.

    def publish(self, batch: Batch) -> Batch:
        """The hub's stage: the batch's ticks for the next flush, its (journaled) alerts now."""
        if batch.ticks:
            self.observe_ticks(batch.ticks)
        for alert in batch.alerts:
            self.publish_alert(alert)
        return batch

    def observe_ticks(self, ticks: Sequence[Tick]) -> None:
        latest = self._latest
        for tick in ticks:
            latest[tick.symbol] = tick

    def publish_alert(self, alert: AlertEvent) -> None:
        """Send ``alert`` to every client subscribed to its symbol (it is journaled already)."""
        self.alerts_published += 1
        frame = encode({"type": "alert", "data": alert.to_dict()})
        limit = self.config.write_limit_bytes
        now: list[ServerConnection] = []
        too_slow: list[HubClient] = []
        for client in _chain(self._by_symbol.get(alert.symbol), self._everything):
            if client.takes_now(limit):
                now.append(client.connection)
            elif not client.closing:
                if len(client.pending) >= self.config.max_pending_alerts:
                    too_slow.append(client)  # dropped after the loop: it changes the sets
                else:
                    client.pending.append(frame)
                    client.wake.set()
        if now:
            broadcast(now, frame, text=True)
        for client in too_slow:
            self._drop_slow(client)

    def _drop_slow(self, client: HubClient) -> None:
        self.slow_disconnects += 1
        client.pending.clear()
        client.backlog.clear()
        log.warning(
            "ws_client_too_slow",
            client=_peer(client.connection),
            pending=self.config.max_pending_alerts,
            hint="disconnected with 1013; it should reconnect with since",
        )
        self._close(client, SLOW_CLIENT_CODE, "too slow; reconnect with since")

    def _close(self, client: HubClient, code: int, reason: str) -> None:
        client.closing = True
        self._unindex(client)
        task = asyncio.get_running_loop().create_task(client.connection.close(code, reason))
        task.add_done_callback(_ignore_result)

    # The network's side.

    async def start(self) -> None:
        """Listen (port 0 picks a free one); a port taken raises :class:`ListenError`."""
        config = self.config
        try:
            self._server = await serve(
                self._serve_client,
                config.host,
                config.port,
                process_request=self._authorize,
                origins=_origins(config.allowed_origins),
                max_size=config.max_message_bytes,
                max_queue=4,
                write_limit=config.write_limit_bytes,
                compression=None,  # encoding once per frame, not once per client
                ping_interval=config.ping_interval_seconds,
                ping_timeout=config.ping_timeout_seconds,
                close_timeout=CLOSE_TIMEOUT_S,
                open_timeout=config.open_timeout_seconds,
                create_connection=limited_connection(self.connections),
            )
        except OSError as error:
            raise ListenError(
                f"the websocket hub cannot listen on {config.host}:{config.port}: "
                f"{error.strerror or error}; set [websocket] port (or enabled = false)"
            ) from None
        socket = next(iter(self._server.sockets))
        self.port = socket.getsockname()[1]
        self.listening.set()
        log.info(
            "ws_hub_listening",
            url=f"ws://{config.host}:{self.port}",
            auth="token" if config.tokens else "none",
        )

    async def run(self) -> None:
        """Serve until cancelled (listening first, unless :meth:`start` did); flush ticks."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            interval = 1.0 / self.config.tick_hz
            while True:
                await asyncio.sleep(interval)
                self._flush_ticks()
        finally:
            self._server.close()
            await self._server.wait_closed()

    async def close(self) -> None:
        """Stop listening, when :meth:`run` never got to (start-up failed after :meth:`start`)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def client_count(self) -> int:
        return len(self._clients)

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        tokens = self.config.tokens
        if not tokens:
            return None
        offered = _offered_token(request.headers, request.path)
        if offered is not None and any(
            hmac.compare_digest(offered.encode(), token.encode()) for token in tokens
        ):
            return None
        self.refused += 1
        log.warning("ws_client_refused", client=_peer(connection), reason="no valid token")
        response = connection.respond(
            HTTPStatus.UNAUTHORIZED,
            "A token is required: send 'Authorization: Bearer <token>' or ?token=<token>.\n",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="strykr-alerts"'
        return response

    async def _serve_client(self, connection: ServerConnection) -> None:
        client = HubClient(connection)
        self._clients.add(client)
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write(client))
        idle = loop.call_later(self.config.subscribe_timeout_seconds, self._close_idle, client)
        log.info("ws_client_connected", client=_peer(connection), clients=len(self._clients))
        try:
            async for message in connection:
                self._on_message(client, message)
                if client.subscribed:
                    idle.cancel()
        except ConnectionClosed:
            pass
        finally:
            idle.cancel()
            self._clients.discard(client)
            self._unindex(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            log.info(
                "ws_client_disconnected",
                client=_peer(connection),
                code=connection.close_code,
                clients=len(self._clients),
            )

    def _close_idle(self, client: HubClient) -> None:
        if client.subscribed or client.closing:
            return
        self.idle_disconnects += 1
        timeout = self.config.subscribe_timeout_seconds
        log.info("ws_client_idle", client=_peer(client.connection), timeout_s=timeout)
        self._close(client, POLICY_VIOLATION_CODE, f"subscribe within {timeout:g} s")

    def _on_message(self, client: HubClient, message: str | bytes) -> None:
        if client.closing:
            return
        try:
            symbols, ticks, since = parse_subscribe(message)
        except ClientMessageError as error:
            self.bad_messages += 1
            log.info(
                "ws_client_message_rejected", client=_peer(client.connection), error=str(error)
            )
            if len(client.backlog) >= MAX_UNREAD_REPLIES:
                # It sends bad messages and reads none of the replies: not a dashboard.
                self._close(client, POLICY_VIOLATION_CODE, "too many bad messages")
                return
            client.backlog.append(encode({"type": "error", "message": str(error)}))
            client.wake.set()
            return
        self._subscribe(client, symbols, ticks, since)

    def _subscribe(
        self, client: HubClient, symbols: frozenset[str] | None, ticks: bool, since: str | None
    ) -> None:
        # No await from here to the end: the history read and the registration for
        # live alerts happen in one step of the loop, so no alert falls between them
        # and none comes twice.
        self._unindex(client)
        client.subscribed = True
        client.symbols = symbols
        client.ticks = ticks
        listed = None if symbols is None else sorted(symbols)
        client.backlog.append(
            encode(
                {
                    "type": "subscribed",
                    "symbols": ["*"] if listed is None else listed,
                    "levels": self.view.levels(symbols),
                    "articles": self.view.articles(symbols),
                }
            )
        )
        if since is not None:
            try:
                missed = self.history.alerts_after(since, listed)
            except UnknownAlertError:
                client.backlog.append(
                    encode(
                        {
                            "type": "error",
                            "message": f"since: no alert {quote(since)} in the journal; "
                            "live alerts follow, fetch older ones from /api/v1/alerts",
                        }
                    )
                )
            else:
                client.backlog.extend(encode({"type": "alert", "data": alert}) for alert in missed)
        if symbols is None:
            self._everything.add(client)
        else:
            for symbol in symbols:
                self._by_symbol.setdefault(symbol, set()).add(client)
        client.wake.set()

    def _unindex(self, client: HubClient) -> None:
        self._everything.discard(client)
        for symbol in client.symbols or ():
            members = self._by_symbol.get(symbol)
            if members is not None:
                members.discard(client)
                if not members:
                    del self._by_symbol[symbol]

    async def _write(self, client: HubClient) -> None:
        """Send what ``client`` is owed, in order, at the pace its socket takes it."""
        connection = client.connection
        while True:
            await client.wake.wait()
            client.wake.clear()
            client.writing = True
            try:
                while client.backlog or client.pending:
                    queue = client.backlog if client.backlog else client.pending
                    await connection.send(queue.popleft(), text=True)
            except ConnectionClosed:
                return
            finally:
                client.writing = False

    def _flush_ticks(self) -> None:
        if not self._latest:
            return
        latest, self._latest = self._latest, {}
        limit = self.config.write_limit_bytes
        for symbol, tick in latest.items():
            now: list[ServerConnection] = []
            for client in _chain(self._by_symbol.get(symbol), self._everything):
                if not client.ticks:
                    continue
                if client.takes_now(limit):
                    now.append(client.connection)
                else:
                    self.ticks_dropped += 1
            if now:
                frame = encode(
                    {
                        "type": "tick",
                        "data": {"symbol": tick.symbol, "price": tick.price, "at": tick.at},
                    }
                )
                broadcast(now, frame, text=True)

    def snapshot(self) -> HubStats:
        return HubStats(
            clients=len(self._clients),
            queued_alerts=sum(len(client.pending) for client in self._clients),
            alerts_published=self.alerts_published,
            slow_disconnects=self.slow_disconnects,
            ticks_dropped=self.ticks_dropped,
            bad_messages=self.bad_messages,
            refused=self.refused,
            idle_disconnects=self.idle_disconnects,
            over_connection_limit=self.connections.refused,
        )


_REFUSAL = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nRetry-After: 10\r\n"
    b"Connection: close\r\nContent-Length: 40\r\n\r\ntoo many connections from your address\r\n"
)


def limited_connection(limit: ConnectionLimit) -> type[ServerConnection]:
    """websockets' connection class, counting connections per address at accept time.

    One past the cap is answered 429 and closed before its handshake is read
    (its handler task sees the closed connection and ends).
    """

    class LimitedConnection(ServerConnection):
        admitted: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            address = peer_address(transport.get_extra_info("peername"))
            if limit.admit(address):
                self.admitted = address
                return
            if limit.refused == 1 or limit.refused % 1000 == 0:
                log.warning(
                    "ws_connections_refused",
                    client=address,
                    per_client=limit.per_client,
                    refused=limit.refused,
                )
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_REFUSAL)
            transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.admitted is not None:
                limit.release(self.admitted)
                self.admitted = None
            super().connection_lost(exc)

    return LimitedConnection


def _origins(allowed: Sequence[str]) -> list[Origin | None] | None:
    if not allowed:
        return None
    # Browsers always send Origin; other clients may not, and an Origin is no
    # credential anyway (tokens are): a missing one passes.
    return [*(Origin(origin) for origin in allowed), None]


def _chain(first: set[HubClient] | None, second: set[HubClient]) -> Iterable[HubClient]:
    if first:
        yield from first
    yield from second


def _offered_token(headers: Headers, path: str) -> str | None:
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    values = parse_qs(urlsplit(path).query).get("token")
    return values[0] if values else None


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
