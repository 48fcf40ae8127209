"""The hub's fan-out policy as a table: each event, the frames, queues and closes it makes.

No socket: each client is a :class:`~service.hub.fanout.Client` whose socket
buffer the test sets, as the server's transport would report it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import UnknownAlertError
from service.hub.fanout import MAX_UNREAD_REPLIES, Actions, Client, Fanout
from service.models import AlertPayload, ArticlePayload, Viewer
from service.processing.live_view import WatchedLevel
from tests.builders import alert_at, tick

LIMIT = 1024  # write_limit_bytes: a socket holding more is slow
LEVEL: WatchedLevel = {
    "rule": "iwm-below-255",
    "symbol": "IWM",
    "level": 255.0,
    "direction": "below",
    "side": "support",
    "origin": "config",
    "owner": None,
    "article": None,
}
# A subscriber's own level: only their dashboards are told of it.
OWN_LEVEL: WatchedLevel = {
    **LEVEL,
    "rule": "ann:r1",
    "level": 254.2,
    "origin": "api",
    "owner": "ann",
}
TOKENS = {"ann-token": "ann", "bob-token": "bob"}


class View:
    def levels(
        self, symbols: frozenset[str] | None, viewer: Viewer | None = None
    ) -> list[WatchedLevel]:
        return [
            level
            for level in (LEVEL, OWN_LEVEL)
            if (symbols is None or level["symbol"] in symbols)
            and (viewer is None or viewer.sees(level["owner"]))
        ]

    def articles(self, symbols: frozenset[str] | None) -> Mapping[str, ArticlePayload]:
        return {}


class History:
    def __init__(self, *alerts: AlertPayload) -> None:
        self.alerts = list(alerts)

    def alerts_after(
        self,
        since: str | None,
        symbols: Iterable[str] | None,
        *,
        limit: int | None = None,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]:
        ids = [alert["id"] for alert in self.alerts]
        if since is not None and since not in ids:
            raise UnknownAlertError(since)
        start = 0 if since is None else ids.index(since) + 1
        wanted = None if symbols is None else set(symbols)
        return [
            a
            for a in self.alerts[start:]
            if (wanted is None or a["symbol"] in wanted)
            and (viewer is None or viewer.sees(a["owner"]))
        ]


class Socket:
    """What the server's transport says of a client's socket: the bytes waiting in it."""

    def __init__(self) -> None:
        self.buffered = 0

    def __call__(self) -> int:
        return self.buffered


def fanout(history: History | None = None, *, max_pending: int = 3) -> Fanout:
    return Fanout(
        view=View(),
        history=history or History(),
        max_pending_alerts=max_pending,
        write_limit_bytes=LIMIT,
        subscribe_timeout_s=10.0,
        manager=TOKENS.get,
    )


def subscribed(hub: Fanout, **request: Any) -> tuple[Client, Socket]:
    socket = Socket()
    client = hub.connect(socket)
    hub.on_message(client, json.dumps({"op": "subscribe", **request}))
    client.backlog.clear()  # the reply, as if written
    return client, socket


def frames(client: Client) -> list[dict[str, Any]]:
    queued = [*client.backlog, *client.pending]
    return [json.loads(frame) for frame in queued]


def written(actions: Actions) -> list[tuple[set[Client], dict[str, Any]]]:
    return [(set(clients), json.loads(frame)) for clients, frame in actions.write_now]


# -- subscribe ----------------------------------------------------------------------


def test_a_subscribe_is_answered_with_the_levels_then_the_missed_alerts() -> None:
    first, second, spx = alert_at(1), alert_at(2), alert_at(3, "SPX")
    hub = fanout(History(first.to_dict(), second.to_dict(), spx.to_dict()))
    client = hub.connect(Socket())
    actions = hub.on_message(
        client, json.dumps({"op": "subscribe", "symbols": ["iwm"], "since": first.id})
    )
    assert actions.wake == [client]
    reply, missed = frames(client)
    assert reply == {"type": "subscribed", "symbols": ["IWM"], "levels": [LEVEL], "articles": {}}
    assert missed == {"type": "alert", "data": second.to_dict()}


def test_a_subscribers_own_levels_and_alerts_reach_their_dashboards_only() -> None:
    public = alert_at(1)
    anns = dataclasses.replace(alert_at(2, "SPX"), owner="ann")
    bobs = dataclasses.replace(alert_at(3), owner="bob")
    hub = fanout(History(*(a.to_dict() for a in (public, anns, bobs))))
    ann = hub.connect(Socket())
    # Ann watches IWM and gives her manage token: her own levels come, and since an
    # alert, everything public of IWM and all of her own (SPX too), never Bob's.
    hub.on_message(
        ann, json.dumps({"op": "subscribe", "symbols": ["IWM"], "since": public.id,
                         "manage": "ann-token"})
    )  # fmt: skip
    reply, *missed = frames(ann)
    assert reply["levels"] == [LEVEL, OWN_LEVEL]
    assert missed == [{"type": "alert", "data": anns.to_dict()}]
    ann.backlog.clear()
    anyone, _ = subscribed(hub, symbols=["*"])
    bob, _ = subscribed(hub, symbols=["*"], manage="bob-token")
    # Live: a public alert to all three; Ann's own, on a symbol she did not list, to her alone.
    assert written(hub.publish_alert(public)) == [
        ({ann, anyone, bob}, {"type": "alert", "data": public.to_dict()})
    ]
    assert written(hub.publish_alert(anns)) == [({ann}, {"type": "alert", "data": anns.to_dict()})]
    assert written(hub.publish_alert(bobs)) == [({bob}, {"type": "alert", "data": bobs.to_dict()})]
    hub.disconnect(ann)
    assert written(hub.publish_alert(anns)) == []


def test_a_subscribe_without_a_manage_token_sees_no_ones_own_levels() -> None:
    hub = fanout()
    client = hub.connect(Socket())
    hub.on_message(client, json.dumps({"op": "subscribe", "symbols": ["*"]}))
    (reply,) = frames(client)
    assert reply["levels"] == [LEVEL]


def test_a_subscribe_with_a_stale_manage_token_is_refused_and_subscribes_nothing() -> None:
    hub = fanout()
    client = hub.connect(Socket())
    hub.on_message(
        client, json.dumps({"op": "subscribe", "symbols": ["*"], "manage": "rotated-token"})
    )
    (reply,) = frames(client)
    assert reply["type"] == "error"
    assert reply["message"].startswith("manage: not the token")
    assert not client.subscribed
    assert written(hub.publish_alert(alert_at(1))) == []


def test_a_subscribe_since_an_unknown_alert_says_so_and_goes_live() -> None:
    hub = fanout()
    client = hub.connect(Socket())
    hub.on_message(client, json.dumps({"op": "subscribe", "symbols": ["IWM"], "since": "nope"}))
    hub.publish_alert(alert_at(1))  # a live alert queues behind the replies, in order
    reply, error, live = frames(client)
    assert reply["type"] == "subscribed"
    assert error["type"] == "error"
    assert 'no alert "nope" in the journal' in error["message"]
    assert live == {"type": "alert", "data": alert_at(1).to_dict()}


def test_a_new_subscribe_replaces_the_symbols_of_the_last() -> None:
    hub = fanout()
    client, _ = subscribed(hub, symbols=["IWM"])
    hub.on_message(client, json.dumps({"op": "subscribe", "symbols": ["SPX"]}))
    client.backlog.clear()
    assert hub.publish_alert(alert_at(1, "IWM")).write_now == []
    assert written(hub.publish_alert(alert_at(2, "SPX")))[0][0] == {client}


# -- alerts -------------------------------------------------------------------------------


def test_an_alert_goes_now_to_fast_clients_of_its_symbol_and_of_every_symbol() -> None:
    hub = fanout()
    iwm, _ = subscribed(hub, symbols=["IWM"])
    spx, _ = subscribed(hub, symbols=["SPX"])
    everything, _ = subscribed(hub, symbols=["*"])
    actions = hub.publish_alert(alert_at(1))
    [(clients, frame)] = written(actions)
    assert clients == {iwm, everything}
    assert frame == {"type": "alert", "data": alert_at(1).to_dict()}
    assert (actions.wake, actions.close) == ([], [])
    assert spx not in clients


def test_an_alert_queues_for_a_client_with_a_full_socket_and_wakes_its_writer() -> None:
    hub = fanout()
    slow, socket = subscribed(hub, symbols=["IWM"])
    fast, _ = subscribed(hub, symbols=["IWM"])
    socket.buffered = LIMIT + 1
    actions = hub.publish_alert(alert_at(1))
    assert written(actions)[0][0] == {fast}
    assert actions.wake == [slow]
    assert frames(slow) == [{"type": "alert", "data": alert_at(1).to_dict()}]
    # Once one alert queues, the next queue behind it, in order, even if the socket drained.
    socket.buffered = 0
    hub.publish_alert(alert_at(2))
    assert [f["data"]["id"] for f in frames(slow)] == [alert_at(1).id, alert_at(2).id]


def test_a_client_past_its_pending_bound_is_closed_with_1013_and_forgotten() -> None:
    hub = fanout(max_pending=3)
    slow, socket = subscribed(hub, symbols=["IWM"])
    socket.buffered = LIMIT + 1
    for n in range(3):
        assert hub.publish_alert(alert_at(n)).close == []
    actions = hub.publish_alert(alert_at(3))
    assert actions.close == [(slow, 1013, "too slow; reconnect with since")]
    assert [note[2] for note in actions.notes] == ["ws_client_too_slow"]
    assert frames(slow) == []
    assert slow.closing
    assert hub.stats.slow_disconnects == 1
    assert hub.publish_alert(alert_at(4)) == Actions()  # no longer a subscriber


# -- bad messages and idle clients -----------------------------------------------


def test_a_bad_message_is_answered_with_what_is_wrong() -> None:
    hub = fanout()
    client = hub.connect(Socket())
    actions = hub.on_message(client, '{"op": "unsubscribe"}')
    assert actions.wake == [client]
    assert frames(client) == [
        {"type": "error", "message": 'unknown op "unsubscribe"; the only op is "subscribe"'}
    ]
    assert hub.stats.bad_messages == 1


def test_a_client_sending_bad_messages_and_reading_no_reply_is_closed_with_1008() -> None:
    hub = fanout()
    client = hub.connect(Socket())
    closes = []
    for _ in range(MAX_UNREAD_REPLIES + 10):
        closes += hub.on_message(client, "not json").close
    assert len(client.backlog) == MAX_UNREAD_REPLIES
    assert closes == [(client, 1008, "too many bad messages")]
    assert hub.stats.bad_messages == MAX_UNREAD_REPLIES + 1


def test_a_client_that_never_subscribes_is_closed_with_1008_one_that_did_is_not() -> None:
    hub = fanout()
    idle = hub.connect(Socket())
    active, _ = subscribed(hub, symbols=["IWM"])
    assert hub.subscribe_timed_out(idle).close == [(idle, 1008, "subscribe within 10 s")]
    assert hub.subscribe_timed_out(active) == Actions()
    assert hub.subscribe_timed_out(idle) == Actions()  # closing already
    assert hub.stats.idle_disconnects == 1


# -- ticks ----------------------------------------------------------------------------------


def test_ticks_are_coalesced_to_the_latest_per_symbol_for_clients_that_want_them() -> None:
    hub = fanout()
    ticking, _ = subscribed(hub, symbols=["IWM"], ticks=True)
    slow, socket = subscribed(hub, symbols=["IWM"], ticks=True)
    quiet, _ = subscribed(hub, symbols=["IWM"])
    socket.buffered = LIMIT + 1
    hub.observe_ticks([tick(250.0, 1), tick(251.0, 2), tick(4900.0, 2, "SPX")])
    [(clients, frame)] = written(hub.flush_ticks())
    assert clients == {ticking}
    assert frame == {
        "type": "tick",
        "data": {"symbol": "IWM", "price": 251.0, "at": tick(251, 2).at},
    }
    assert hub.stats.ticks_dropped == 1  # the slow one's: ticks never queue
    assert frames(slow) == frames(quiet) == []
    assert hub.flush_ticks() == Actions()  # nothing new since


@settings(max_examples=50)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["IWM", "SPX", "RUT"]), st.integers(0, 2 * LIMIT)),
        max_size=40,
    ),
    max_pending=st.integers(1, 5),
)
def test_no_client_ever_holds_more_than_its_bound_nor_misses_an_alert_unclosed(
    events: list[tuple[str, int]], max_pending: int
) -> None:
    hub = fanout(max_pending=max_pending)
    client, socket = subscribed(hub, symbols=["*"])
    got: list[str] = []
    for n, (symbol, buffered) in enumerate(events):
        socket.buffered = buffered
        alert = alert_at(n, symbol)
        actions = hub.publish_alert(alert)
        got += [
            json.loads(f)["data"]["id"] for clients, f in actions.write_now if client in clients
        ]
        assert len(client.pending) <= max_pending
        if client.closing:
            return  # closed with 1013: it comes back with since, and misses nothing then
    got += [json.loads(frame)["data"]["id"] for frame in client.pending]
    assert got == [alert_at(n, symbol).id for n, (symbol, _) in enumerate(events)]
