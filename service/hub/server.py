"""The websocket hub traders' dashboards connect to: the I/O around the fan-out policy.

Protocol, JSON text frames (docs/protocol.md has the full reference)::

    client → {"op": "subscribe", "symbols": ["IWM"], "ticks": true, "since": "<alert id>"}
    server → {"type": "subscribed", "symbols": [...], "levels": [...], "articles": {...}}
             {"type": "alert", "data": ALERT}            every journaled alert after "since",
                                                         then live ones
             {"type": "tick", "data": {"symbol", "price", "at"}}   at most tick_hz per symbol
             {"type": "error", "message": "..."}         a bad client message; never fatal

Three parts: :mod:`~service.hub.protocol` reads what a client sends,
:mod:`~service.hub.fanout` decides who gets what and who is closed (a
slow client never slows the engine or the others), and this module moves
the bytes: it accepts connections, feeds each event to the policy, and
carries out what it says (a ``broadcast`` of the frames to write now, a
writer per client for what queued, the closes).

Connections are bounded before a byte is read: at most
``max_connections_per_client`` per address (more are answered 429 and
closed), an opening handshake done within ``open_timeout_seconds``, and a
``subscribe`` within ``subscribe_timeout_seconds`` (else closed with 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from service.clock import SYSTEM_CLOCK, Clock
from service.connection_limit import ConnectionLimit, peer_address
from service.errors import ListenError
from service.hub.fanout import Actions, AlertHistory, Client, Fanout, HubReadModel, Manager
from service.hub.settings import WebsocketHubConfig
from service.models import AlertEvent, AlertPayload, Tick
from service.processing.batch import Batch

log = structlog.get_logger("service.ws_hub")

CLOSE_TIMEOUT_S = 2.0


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


@dataclass(slots=True)
class _Peer:
    """A client's connection and the event that wakes its writer."""

    connection: ServerConnection
    wake: asyncio.Event


class WebsocketHub:
    """Serves dashboards: a snapshot on subscribe, missed alerts, then live alerts and ticks."""

    def __init__(
        self,
        config: WebsocketHubConfig,
        *,
        history: AlertHistory,
        view: HubReadModel,
        clock: Clock = SYSTEM_CLOCK,
        manager: Manager | None = None,
    ) -> None:
        self.config = config
        self.fanout = Fanout(
            view=view,
            history=history,
            max_pending_alerts=config.max_pending_alerts,
            write_limit_bytes=config.write_limit_bytes,
            subscribe_timeout_s=config.subscribe_timeout_seconds,
            manager=manager,
        )
        self._clock = clock
        self.port: int | None = None  # once listening (config.port 0 picks a free one)
        self.listening = asyncio.Event()
        self.flushes = 0  # tick flushes done (a test steps the clock and counts them)
        self._server: Server | None = None
        self._peers: dict[Client, _Peer] = {}
        self.refused = 0
        self.connections = ConnectionLimit(config.max_connections_per_client)

    # The engine's side: synchronous, called from the engine task.

    def publish(self, batch: Batch) -> Batch:
        """The hub's stage: the batch's ticks for the next flush, its (journaled) alerts now."""
        if batch.ticks:
            self.fanout.observe_ticks(batch.ticks)
        for alert in batch.alerts:
            self._carry_out(self.fanout.publish_alert(alert))
        return batch

    def observe_ticks(self, ticks: Sequence[Tick]) -> None:
        self.fanout.observe_ticks(ticks)

    def publish_alert(self, alert: AlertEvent) -> None:
        """Send ``alert`` to every client subscribed to its symbol (it is journaled already)."""
        self._carry_out(self.fanout.publish_alert(alert))

    def publish_recorded(self, alert: AlertPayload) -> None:
        """Send an alert read back from the shared journal (a gateway's feed), as above."""
        self._carry_out(self.fanout.publish_payload(alert))

    def _carry_out(self, actions: Actions) -> None:
        peers = self._peers
        for clients, frame in actions.write_now:
            broadcast([client.handle for client in clients], frame, text=True)
        for client in actions.wake:
            peer = peers.get(client)
            if peer is not None:
                peer.wake.set()
        for client, level, event, fields in actions.notes:
            peer = peers.get(client)
            where = "?" if peer is None else _peer(peer.connection)
            getattr(log, level)(event, client=where, **fields)
        for client, code, reason in actions.close:
            peer = peers.get(client)
            if peer is not None:
                task = asyncio.get_running_loop().create_task(peer.connection.close(code, reason))
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
                await self._clock.sleep(interval)
                self._carry_out(self.fanout.flush_ticks())
                self.flushes += 1
        finally:
            server, self._server = self._server, None  # a restarted run listens again
            self.listening.clear()
            server.close()
            await server.wait_closed()

    async def close(self) -> None:
        """Stop listening, when :meth:`run` never got to (start-up failed after :meth:`start`)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def disconnect_all(self, code: int = 1012, reason: str = "service restart") -> None:
        """Close every dashboard's connection (1012: they reconnect with ``since``)."""
        for peer in list(self._peers.values()):
            task = asyncio.get_running_loop().create_task(peer.connection.close(code, reason))
            task.add_done_callback(_ignore_result)

    def snapshot(self) -> HubStats:
        stats = self.fanout.stats
        return HubStats(
            clients=len(self.fanout.clients),
            queued_alerts=sum(len(client.pending) for client in self.fanout.clients),
            alerts_published=stats.alerts_published,
            slow_disconnects=stats.slow_disconnects,
            ticks_dropped=stats.ticks_dropped,
            bad_messages=stats.bad_messages,
            refused=self.refused,
            idle_disconnects=stats.idle_disconnects,
            over_connection_limit=self.connections.refused,
        )

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
        transport = connection.transport
        client = self.fanout.connect(
            lambda: None if transport is None else transport.get_write_buffer_size(),
            handle=connection,
        )
        peer = self._peers[client] = _Peer(connection, asyncio.Event())
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write(client, peer))
        idle = loop.call_later(
            self.config.subscribe_timeout_seconds,
            lambda: self._carry_out(self.fanout.subscribe_timed_out(client)),
        )
        clients = len(self.fanout.clients)
        log.info("ws_client_connected", client=_peer(connection), clients=clients)
        try:
            async for message in connection:
                self._carry_out(self.fanout.on_message(client, message))
                if client.subscribed:
                    idle.cancel()
        except ConnectionClosed:
            pass
        finally:
            idle.cancel()
            self.fanout.disconnect(client)
            del self._peers[client]
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            log.info(
                "ws_client_disconnected",
                client=_peer(connection),
                code=connection.close_code,
                clients=len(self.fanout.clients),
            )

    async def _write(self, client: Client, peer: _Peer) -> None:
        """Send what ``client`` is owed, in order, at the pace its socket takes it."""
        while True:
            await peer.wake.wait()
            peer.wake.clear()
            client.writing = True
            try:
                while (frame := client.next_frame()) is not None:
                    await peer.connection.send(frame, text=True)
            except ConnectionClosed:
                return
            finally:
                client.writing = False


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
