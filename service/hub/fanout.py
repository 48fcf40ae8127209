"""The hub's fan-out policy, sans I/O: who gets which frame, who is too slow, who is closed.

:class:`Fanout` keeps every dashboard's subscription and what it is owed,
and answers each event (a client's message, an alert, a tick flush, a
client that never subscribed) with :class:`Actions`: frames to write now,
clients whose queues now hold frames, connections to close. The websocket
server (:mod:`service.hub.server`) only carries them out; this module never
touches a socket, so its policy is tested as a table.

The policy: each frame is encoded once. A client whose socket buffer holds
no more than ``write_limit_bytes`` and that has nothing queued takes the frame
now (as ``websockets.broadcast`` would). Otherwise alerts queue for it, up to
``max_pending_alerts``; past that it is closed with 1013 ("try again later")
and comes back with ``since``. Ticks never queue: a slow client misses them
and gets the latest price at the next flush. A client that sends bad
messages and reads none of the replies is closed with 1008, as is one that
has not subscribed within the time allowed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.errors import UnknownAlertError
from service.hub.protocol import ClientMessageError, encode, parse_subscribe
from service.models import AlertEvent, AlertPayload, ArticlePayload, Tick, Viewer
from service.processing.live_view import WatchedLevel
from service.text import quote

SLOW_CLIENT_CODE = 1013  # "Try Again Later"
POLICY_VIOLATION_CODE = 1008
# Replies (the subscribe answer, history, errors) waiting for a client that reads none.
MAX_UNREAD_REPLIES = 64


class HubReadModel(Protocol):
    """What a new subscriber is told first: the levels watched and the latest articles."""

    def levels(
        self, symbols: frozenset[str] | None, viewer: Viewer | None = None
    ) -> list[WatchedLevel]: ...

    def articles(self, symbols: frozenset[str] | None) -> Mapping[str, ArticlePayload]: ...


class AlertHistory(Protocol):
    def alerts_after(
        self,
        since: str | None,
        symbols: Iterable[str] | None,
        *,
        limit: int | None = None,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]: ...


# A manage link's token → the subscriber it belongs to (None: not a current one).
Manager = Callable[[str], str | None]


class Client:
    """One connected dashboard: what it wants, and what it is owed.

    ``buffered`` says how many bytes wait in its socket (the I/O layer's
    transport); ``writing`` is true while the I/O layer writes its queue;
    ``handle`` is the I/O layer's own (its connection), carried, never read.
    """

    __slots__ = (
        "backlog",
        "buffered",
        "closing",
        "handle",
        "owner",
        "pending",
        "subscribed",
        "symbols",
        "ticks",
        "writing",
    )

    def __init__(self, buffered: Callable[[], int | None], handle: Any = None) -> None:
        self.buffered = buffered
        self.handle = handle
        self.subscribed = False
        self.symbols: frozenset[str] | None = frozenset()  # None: every symbol
        self.ticks = False
        # The subscriber whose manage token it gave: it gets their own rules and alerts too.
        self.owner: str | None = None
        self.backlog: deque[bytes] = deque()  # the subscribe reply and its history, errors
        self.pending: deque[bytes] = deque()  # live alerts that could not be written at once
        self.writing = False
        self.closing = False

    def takes_now(self, limit: int) -> bool:
        """Whether a frame can be written now without queueing behind others."""
        if self.writing or self.backlog or self.pending or self.closing:
            return False
        buffered = self.buffered()
        return buffered is not None and buffered <= limit

    def next_frame(self) -> bytes | None:
        """The next frame to write: replies first, then queued alerts (``None``: nothing)."""
        if self.backlog:
            return self.backlog.popleft()
        if self.pending:
            return self.pending.popleft()
        return None


@dataclass
class Actions:
    """What the I/O layer must do now, and the log lines it owes (it knows the peers)."""

    write_now: list[tuple[list[Client], bytes]] = field(default_factory=list)
    wake: list[Client] = field(default_factory=list)  # their queues hold frames to write
    close: list[tuple[Client, int, str]] = field(default_factory=list)
    # (client, level, event, fields): what happened to a client, for the log.
    notes: list[tuple[Client, str, str, dict[str, object]]] = field(default_factory=list)


@dataclass
class FanoutStats:
    alerts_published: int = 0
    slow_disconnects: int = 0  # closed with 1013
    ticks_dropped: int = 0  # not sent to a client whose socket was full
    bad_messages: int = 0
    idle_disconnects: int = 0  # closed with 1008 for not subscribing


class Fanout:
    """Every dashboard's subscription and queue; each event in, the I/O to do out."""

    def __init__(
        self,
        *,
        view: HubReadModel,
        history: AlertHistory,
        max_pending_alerts: int,
        write_limit_bytes: int,
        subscribe_timeout_s: float,
        manager: Manager | None = None,
    ) -> None:
        self.view = view
        self.manager = manager
        self.history = history
        self.max_pending_alerts = max_pending_alerts
        self.write_limit_bytes = write_limit_bytes
        self.subscribe_timeout_s = subscribe_timeout_s
        self.clients: set[Client] = set()
        self.stats = FanoutStats()
        self._by_symbol: dict[str, set[Client]] = {}
        self._everything: set[Client] = set()
        self._by_owner: dict[str, set[Client]] = {}
        self._latest: dict[str, Tick] = {}  # ticks not yet flushed, latest per symbol

    # -- clients --------------------------------------------------------------

    def connect(self, buffered: Callable[[], int | None], handle: Any = None) -> Client:
        client = Client(buffered, handle)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)
        self._unindex(client)

    def on_message(self, client: Client, message: str | bytes) -> Actions:
        """A client's message: a subscription, or an error reply (and 1008 for a flood)."""
        actions = Actions()
        if client.closing:
            return actions
        try:
            symbols, ticks, since, manage = parse_subscribe(message)
            owner = None if manage is None else self._owner_of(manage)
        except ClientMessageError as error:
            self.stats.bad_messages += 1
            actions.notes.append(
                (client, "info", "ws_client_message_rejected", {"error": str(error)})
            )
            if len(client.backlog) >= MAX_UNREAD_REPLIES:
                # It sends bad messages and reads none of the replies: not a dashboard.
                self._close(client, POLICY_VIOLATION_CODE, "too many bad messages", actions)
                return actions
            client.backlog.append(encode({"type": "error", "message": str(error)}))
            actions.wake.append(client)
            return actions
        self._subscribe(client, symbols, ticks, since, owner)
        actions.wake.append(client)
        return actions

    def _owner_of(self, token: str) -> str:
        owner = None if self.manager is None else self.manager(token)
        if owner is None:
            raise ClientMessageError(
                "manage: not the token of a current manage link (a rotated link stops "
                "working); subscribe without it, or with the newest one"
            )
        return owner

    def subscribe_timed_out(self, client: Client) -> Actions:
        """The time to subscribe is up: a client that has not is closed with 1008."""
        actions = Actions()
        if client.subscribed or client.closing:
            return actions
        self.stats.idle_disconnects += 1
        timeout = self.subscribe_timeout_s
        actions.notes.append((client, "info", "ws_client_idle", {"timeout_s": timeout}))
        self._close(client, POLICY_VIOLATION_CODE, f"subscribe within {timeout:g} s", actions)
        return actions

    # -- the engine's side ---------------------------------------------------------

    def publish_alert(self, alert: AlertEvent) -> Actions:
        """``alert`` (journaled already) to every client subscribed to its symbol.

        A subscriber's own alert goes to that subscriber's clients alone, whatever
        symbols they subscribed to.
        """
        return self.publish_payload(alert.to_dict())

    def publish_payload(self, alert: AlertPayload) -> Actions:
        """An alert as the journal keeps it (a gateway's, read back): as :meth:`publish_alert`."""
        self.stats.alerts_published += 1
        actions = Actions()
        frame = encode({"type": "alert", "data": alert})
        limit = self.write_limit_bytes
        now: list[Client] = []
        too_slow: list[Client] = []
        owner = alert["owner"]
        if owner is None:
            clients = _chain(self._by_symbol.get(alert["symbol"]), self._everything)
        else:
            clients = iter(self._by_owner.get(owner, ()))
        for client in clients:
            if client.takes_now(limit):
                now.append(client)
            elif not client.closing:
                if len(client.pending) >= self.max_pending_alerts:
                    too_slow.append(client)  # closed after the loop: it changes the sets
                else:
                    client.pending.append(frame)
                    actions.wake.append(client)
        if now:
            actions.write_now.append((now, frame))
        for client in too_slow:
            self.stats.slow_disconnects += 1
            client.pending.clear()
            client.backlog.clear()
            actions.notes.append(
                (
                    client,
                    "warning",
                    "ws_client_too_slow",
                    {
                        "pending": self.max_pending_alerts,
                        "hint": "disconnected with 1013; it should reconnect with since",
                    },
                )
            )
            self._close(client, SLOW_CLIENT_CODE, "too slow; reconnect with since", actions)
        return actions

    def observe_ticks(self, ticks: Sequence[Tick]) -> None:
        latest = self._latest
        for tick in ticks:
            latest[tick.symbol] = tick

    def flush_ticks(self) -> Actions:
        """The latest price of each symbol that ticked, to the clients that want ticks."""
        actions = Actions()
        if not self._latest:
            return actions
        latest, self._latest = self._latest, {}
        limit = self.write_limit_bytes
        for symbol, tick in latest.items():
            now: list[Client] = []
            for client in _chain(self._by_symbol.get(symbol), self._everything):
                if not client.ticks:
                    continue
                if client.takes_now(limit):
                    now.append(client)
                else:
                    self.stats.ticks_dropped += 1
            if now:
                frame = encode(
                    {
                        "type": "tick",
                        "data": {"symbol": tick.symbol, "price": tick.price, "at": tick.at},
                    }
                )
                actions.write_now.append((now, frame))
        return actions

    # -- inside -------------------------------------------------------------------

    def _subscribe(
        self,
        client: Client,
        symbols: frozenset[str] | None,
        ticks: bool,
        since: str | None,
        owner: str | None,
    ) -> None:
        # One synchronous step: the history read and the registration for live alerts
        # happen together, so no alert falls between them and none comes twice.
        self._unindex(client)
        client.subscribed = True
        client.symbols = symbols
        client.ticks = ticks
        client.owner = owner
        viewer = Viewer(owner)
        listed = None if symbols is None else sorted(symbols)
        client.backlog.append(
            encode(
                {
                    "type": "subscribed",
                    "symbols": ["*"] if listed is None else listed,
                    "levels": self.view.levels(symbols, viewer),
                    "articles": self.view.articles(symbols),
                }
            )
        )
        if since is not None:
            try:
                missed = self._missed(since, listed, viewer)
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
        if owner is not None:
            self._by_owner.setdefault(owner, set()).add(client)

    def _missed(self, since: str, listed: list[str] | None, viewer: Viewer) -> list[AlertPayload]:
        """The alerts after ``since`` the client is owed: of its symbols, and its own on any."""
        if viewer.subscriber is None or listed is None:
            return self.history.alerts_after(since, listed, viewer=viewer)
        # Its own alerts come whatever their symbol, as live ones do: all it may see,
        # narrowed to its symbols or its own, in journal order.
        wanted = set(listed)
        return [
            alert
            for alert in self.history.alerts_after(since, None, viewer=viewer)
            if alert["symbol"] in wanted or alert["owner"] == viewer.subscriber
        ]

    def _close(self, client: Client, code: int, reason: str, actions: Actions) -> None:
        client.closing = True
        self._unindex(client)
        actions.close.append((client, code, reason))

    def _unindex(self, client: Client) -> None:
        self._everything.discard(client)
        if client.owner is not None:
            owned = self._by_owner.get(client.owner)
            if owned is not None:
                owned.discard(client)
                if not owned:
                    del self._by_owner[client.owner]
        for symbol in client.symbols or ():
            members = self._by_symbol.get(symbol)
            if members is not None:
                members.discard(client)
                if not members:
                    del self._by_symbol[symbol]


def _chain(first: set[Client] | None, second: set[Client]) -> Iterable[Client]:
    if first:
        yield from first
    yield from second
