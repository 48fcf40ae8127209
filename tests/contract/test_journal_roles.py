"""The journal roles' contract: what every journal implementation must do, tested on each.

A new implementation (a server database) joins :data:`IMPLEMENTATIONS` and
must pass every test here unchanged. Each test names the role it holds to
its word (see :mod:`service.journal.roles`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.errors import JournalError, UnknownAlertError
from service.journal.postgres import PostgresJournal
from service.journal.records import (
    Checkpoint,
    Planned,
    StoredRule,
    Subscriber,
    WebPushSubscription,
)
from service.journal.roles import Journal
from service.journal.sqlite import SqliteJournal
from service.models import AlertPayload, AttachedArticle, Level, Viewer
from tests.builders import alert_at, at
from tests.postgres import PostgresServer

NOW = at(0)
PLAN = [Planned("reader", "email", "reader@example.com"), Planned("reader", "webhook", "http://h")]


@dataclass(frozen=True)
class Implementation:
    """How to make a journal of one kind, and how to make it refuse writes (a full disk)."""

    name: str
    # Made in a test's directory; the same directory gives the same storage again.
    make: Callable[[Path, pytest.FixtureRequest], Journal]
    refuse_writes: Callable[[Journal, bool], None]
    durable: bool  # what it stored is there when it is opened again


def _sqlite_refuse(journal: Journal, refuse: bool) -> None:
    assert isinstance(journal, SqliteJournal)
    journal.refuse_writes(refuse)


def _postgres(directory: Path, request: pytest.FixtureRequest) -> Journal:
    """A database of the tests' own PostgreSQL server, one per test directory."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return PostgresJournal(server.database_for(str(directory)))


def _postgres_refuse(journal: Journal, refuse: bool) -> None:
    assert isinstance(journal, PostgresJournal)
    journal.refuse_writes(refuse)


IMPLEMENTATIONS = [
    Implementation(
        "sqlite-file", lambda d, _r: SqliteJournal(d / "var" / "alerts.db"), _sqlite_refuse, True
    ),
    Implementation(
        "sqlite-memory", lambda _d, _r: SqliteJournal(":memory:"), _sqlite_refuse, False
    ),
    Implementation("postgresql", _postgres, _postgres_refuse, True),
]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda implementation: implementation.name)
def implementation(request: pytest.FixtureRequest) -> Implementation:
    found: Implementation = request.param
    return found


@pytest.fixture
def journal(
    implementation: Implementation, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Journal]:
    made = implementation.make(tmp_path, request)
    made.open()
    yield made
    made.close()


# -- AlertLog ---------------------------------------------------------------------


def test_alert_log_stores_an_alert_and_its_deliveries_once(journal: Journal) -> None:
    alert = alert_at(1)
    assert journal.record_alerts([(alert, PLAN)], now_ns=NOW) == [alert]
    assert journal.record_alerts([(alert, PLAN), (alert_at(2), PLAN)], now_ns=NOW) == [alert_at(2)]
    assert journal.alert_count() == 2
    assert len(journal.deliveries(alert_id=alert.id)) == 2


def test_alert_log_keeps_one_delivery_per_subscriber_channel_and_address(
    journal: Journal,
) -> None:
    journal.record_alerts([(alert_at(1), [*PLAN, PLAN[0]])], now_ns=NOW)
    assert len(journal.deliveries()) == 2


def test_alert_log_gives_back_the_alert_payload_exactly_as_recorded(journal: Journal) -> None:
    article = AttachedArticle(
        title="Small caps \u2014 left for dead",
        url="https://strykr.example/a",
        published_ns=at(-3600),
        pulse=40,
        threat_level=3,
        bias="bearish",
        take="Trade the trend.",
        levels=(Level(symbol="IWM", price=255.0, side="support"),),
    )
    alert = dataclasses.replace(alert_at(1), article=article)
    journal.record_alerts([(alert, [])], now_ns=NOW)
    assert journal.alerts_after(None, None) == [alert.to_dict()]
    assert journal.recent_alerts() == [alert.to_dict()]
    assert journal.alerts_from(alert.ts_ns) == [alert.to_dict()]


def test_alert_log_reads_after_an_alert_in_recording_order_by_symbol(journal: Journal) -> None:
    alerts = [alert_at(n, "IWM" if n % 2 else "SPX") for n in range(6)]
    journal.record_alerts([(alert, []) for alert in alerts], now_ns=NOW)
    after = journal.alerts_after(alerts[1].id, ["IWM"])
    assert [a["id"] for a in after] == [alerts[3].id, alerts[5].id]
    assert [a["id"] for a in journal.alerts_after(None, None)] == [a.id for a in alerts]
    assert [a["id"] for a in journal.alerts_after(alerts[0].id, None, limit=2)] == [
        alerts[1].id,
        alerts[2].id,
    ]
    with pytest.raises(UnknownAlertError) as raised:
        journal.alerts_after("nope", None)
    assert raised.value.alert_id == "nope"


def test_alert_log_shows_a_viewer_the_alerts_for_everyone_and_their_own_only(
    journal: Journal,
) -> None:
    public = alert_at(1)
    mine = dataclasses.replace(alert_at(2), owner="sub_a")
    theirs = dataclasses.replace(alert_at(3), owner="sub_b")
    journal.record_alerts([(a, []) for a in (public, mine, theirs)], now_ns=NOW)

    def ids(payloads: list[AlertPayload]) -> list[str]:
        return [payload["id"] for payload in payloads]

    everything = [public.id, mine.id, theirs.id]
    assert ids(journal.recent_alerts()) == everything
    assert ids(journal.alerts_after(None, None)) == everything
    for viewer, seen in (
        (Viewer(None), [public.id]),
        (Viewer("sub_a"), [public.id, mine.id]),
        (Viewer("sub_b"), [public.id, theirs.id]),
    ):
        assert ids(journal.recent_alerts(viewer=viewer)) == seen
        assert ids(journal.alerts_after(None, ["IWM"], viewer=viewer)) == seen
        assert ids(journal.alerts_from(at(0), viewer=viewer)) == seen
    assert journal.recent_alerts(viewer=Viewer("sub_a"))[1]["owner"] == "sub_a"


def test_alert_log_reads_the_latest_and_from_a_time(journal: Journal) -> None:
    # Recorded out of time order: reads follow the recording order.
    alerts = [alert_at(5, "SPX"), alert_at(1, "IWM"), alert_at(3, "SPX"), alert_at(4, "SPX")]
    journal.record_alerts([(alert, []) for alert in alerts], now_ns=NOW)
    assert [a["id"] for a in journal.recent_alerts(symbol="SPX", limit=2)] == [
        alerts[2].id,
        alerts[3].id,
    ]
    assert [a["id"] for a in journal.recent_alerts(limit=10)] == [a.id for a in alerts]
    assert [a["id"] for a in journal.alerts_from(at(3))] == [
        alerts[0].id,
        alerts[2].id,
        alerts[3].id,
    ]
    assert [a["id"] for a in journal.alerts_from(at(3), symbol="SPX", limit=2)] == [
        alerts[0].id,
        alerts[2].id,
    ]


def test_alert_log_refusing_writes_raises_and_stores_nothing(
    implementation: Implementation, journal: Journal
) -> None:
    implementation.refuse_writes(journal, True)
    with pytest.raises(JournalError):
        journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    implementation.refuse_writes(journal, False)
    assert journal.alert_count() == 0
    assert journal.deliveries() == []
    assert journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW) == [alert_at(1)]


# -- Checkpoints ---------------------------------------------------------------------


def test_checkpoints_of_a_new_journal_are_empty(journal: Journal) -> None:
    assert journal.load_checkpoint() == Checkpoint()


def test_checkpoints_keep_the_latest_value_of_each_symbol_and_source(journal: Journal) -> None:
    first = Checkpoint(symbols={"IWM": "a", "SPX": "b"}, positions={"file": "f:10"})
    journal.record_alerts([], now_ns=NOW, checkpoint=first)
    # A later checkpoint names only what changed: the rest keeps its value.
    journal.record_alerts(
        [(alert_at(1), PLAN)],
        now_ns=NOW,
        checkpoint=Checkpoint(symbols={"IWM": "c"}, positions={"file": "f:20", "feed": "x"}),
    )
    assert journal.load_checkpoint() == Checkpoint(
        symbols={"IWM": "c", "SPX": "b"}, positions={"file": "f:20", "feed": "x"}
    )
    assert journal.alert_count() == 1


def test_the_tick_log_grows_in_order_until_states_in_full_start_it_over(journal: Journal) -> None:
    journal.record_alerts([], now_ns=NOW, checkpoint=Checkpoint(ticks=["t1"]))
    journal.record_alerts([], now_ns=NOW, checkpoint=Checkpoint(ticks=["t2", "t3"]))
    assert journal.load_checkpoint().ticks == ("t1", "t2", "t3")
    # States written in full cover every tick logged so far; what comes with them is new.
    full = Checkpoint(symbols={"IWM": "s"}, ticks=["t4"], reset_log=True)
    journal.record_alerts([], now_ns=NOW, checkpoint=full)
    assert journal.load_checkpoint() == Checkpoint(symbols={"IWM": "s"}, ticks=("t4",))


def test_each_engine_shard_has_its_own_tick_log_and_sources_places(journal: Journal) -> None:
    journal.record_alerts([], now_ns=NOW, checkpoint=Checkpoint(ticks=["solo"]))
    for scope in ("0/2", "1/2"):
        journal.record_alerts(
            [],
            now_ns=NOW,
            checkpoint=Checkpoint(
                symbols={f"S{scope[0]}": scope},
                positions={"file": f"at {scope}"},
                ticks=[f"{scope} t1", f"{scope} t2"],
                scope=scope,
            ),
        )
    # A shard's states in full start its own log over, and no other's.
    journal.record_alerts(
        [], now_ns=NOW, checkpoint=Checkpoint(ticks=["0/2 t3"], reset_log=True, scope="0/2")
    )
    states = {"S0": "0/2", "S1": "1/2"}
    assert journal.load_checkpoint("0/2") == Checkpoint(
        symbols=states, positions={"file": "at 0/2"}, ticks=("0/2 t3",), scope="0/2"
    )
    assert journal.load_checkpoint("1/2") == Checkpoint(
        symbols=states, positions={"file": "at 1/2"}, ticks=("1/2 t1", "1/2 t2"), scope="1/2"
    )
    assert journal.load_checkpoint() == Checkpoint(symbols=states, ticks=("solo",))


def test_alert_positions_grow_in_recording_order_and_a_reader_goes_on_from_the_last(
    journal: Journal,
) -> None:
    assert journal.last_seq() == 0
    assert journal.alerts_since_seq(0, limit=10) == []
    journal.record_alerts([(alert_at(n), []) for n in range(3)], now_ns=NOW)
    first = journal.alerts_since_seq(0, limit=2)
    assert [payload["id"] for _, payload in first] == [alert_at(0).id, alert_at(1).id]
    rest = journal.alerts_since_seq(first[-1][0], limit=10)
    assert [payload for _, payload in rest] == [alert_at(2).to_dict()]
    assert journal.last_seq() == rest[-1][0] > first[-1][0] > first[0][0]
    journal.record_alerts([(alert_at(2), []), (alert_at(3), [])], now_ns=NOW)
    assert [p["id"] for _, p in journal.alerts_since_seq(rest[-1][0], limit=10)] == [alert_at(3).id]


def test_checkpoints_are_stored_with_their_alerts_or_not_at_all(
    implementation: Implementation, journal: Journal
) -> None:
    before = Checkpoint(symbols={"IWM": "before"}, ticks=("t1",))
    journal.record_alerts([], now_ns=NOW, checkpoint=before)
    implementation.refuse_writes(journal, True)
    after = Checkpoint(symbols={"IWM": "after"}, ticks=("t2",), reset_log=True)
    with pytest.raises(JournalError):
        journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW, checkpoint=after)
    implementation.refuse_writes(journal, False)
    assert journal.load_checkpoint() == before
    assert journal.alert_count() == 0


# -- Outbox -----------------------------------------------------------------------


def test_outbox_due_rows_follow_sent_retry_and_dead(journal: Journal) -> None:
    journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    (email,) = journal.due("email", now_ns=NOW, limit=10)
    assert email.alert == alert_at(1).to_dict()
    assert (email.subscriber, email.target, email.attempts) == ("reader", "reader@example.com", 0)
    journal.mark_retry(email.id, "SMTP 451 later", next_ns=NOW + 5, now_ns=NOW)
    assert journal.due("email", now_ns=NOW + 4, limit=10) == []
    assert journal.next_due_ns("email") == NOW + 5
    (again,) = journal.due("email", now_ns=NOW + 5, limit=10)
    assert again.attempts == 1
    journal.mark_sent(again.id, now_ns=NOW + 6)
    assert journal.next_due_ns("email") is None
    (webhook,) = journal.due("webhook", now_ns=NOW, limit=10)
    journal.mark_dead(webhook.id, "HTTP 404", now_ns=NOW)
    rows = {row.channel: row for row in journal.deliveries()}
    assert (rows["email"].status, rows["email"].attempts) == ("sent", 2)
    assert rows["email"].last_error == "SMTP 451 later"
    assert (rows["webhook"].status, rows["webhook"].last_error) == ("dead", "HTTP 404")
    assert journal.delivery_counts() == {("email", "sent"): 1, ("webhook", "dead"): 1}
    assert journal.pending_count() == 0


def test_outbox_a_cancelled_delivery_is_not_an_attempt_and_never_due(journal: Journal) -> None:
    journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    (email,) = journal.due("email", now_ns=NOW, limit=10)
    journal.mark_cancelled(email.id, "unsubscribed", now_ns=NOW)
    assert journal.due("email", now_ns=NOW + 1, limit=10) == []
    [row] = journal.deliveries(alert_id=alert_at(1).id)[:1]
    assert (row.status, row.attempts, row.last_error) == ("cancelled", 0, "unsubscribed")
    assert journal.pending_count() == 1  # the webhook's


def test_outbox_gives_due_rows_oldest_first_up_to_the_limit(journal: Journal) -> None:
    alerts = [alert_at(n) for n in range(5)]
    for alert in alerts:
        journal.record_alerts([(alert, PLAN[:1])], now_ns=NOW)
    first = journal.due("email", now_ns=NOW, limit=3)
    assert [row.alert_id for row in first] == [a.id for a in alerts[:3]]
    journal.mark_retry(first[0].id, "later", next_ns=NOW + 1, now_ns=NOW)
    assert [row.alert_id for row in journal.due("email", now_ns=NOW + 1, limit=10)] == [
        a.id for a in alerts[1:]
    ] + [alerts[0].id]
    assert journal.due("webhook", now_ns=NOW, limit=10) == []


def test_outbox_claims_hold_rows_until_their_lease_ends_or_they_are_marked(
    journal: Journal,
) -> None:
    alerts = [alert_at(n) for n in range(4)]
    for alert in alerts:
        journal.record_alerts([(alert, PLAN[:1])], now_ns=NOW)
    taken = journal.claim("email", now_ns=NOW, limit=2, lease_ns=100)
    assert [row.alert_id for row in taken] == [a.id for a in alerts[:2]]
    # Held: neither claimed again nor due, until the lease ends.
    again = journal.claim("email", now_ns=NOW + 1, limit=10, lease_ns=100)
    assert [row.alert_id for row in again] == [a.id for a in alerts[2:]]
    assert journal.claim("email", now_ns=NOW + 99, limit=10, lease_ns=100) == []
    assert journal.due("email", now_ns=NOW + 99, limit=10) == []
    assert journal.next_due_ns("email") == NOW + 100
    # Marked, a row is done with its claim: a retry falls due at its own time.
    journal.mark_sent(taken[0].id, now_ns=NOW + 5)
    journal.mark_retry(taken[1].id, "later", next_ns=NOW + 50, now_ns=NOW + 5)
    assert [row.alert_id for row in journal.claim("email", now_ns=NOW + 50, limit=10,
                                                   lease_ns=100)] == [alerts[1].id]  # fmt: skip
    # The lease of the others ended (a worker died with them): due again.
    late = journal.claim("email", now_ns=NOW + 101, limit=10, lease_ns=100)
    assert [row.alert_id for row in late] == [a.id for a in alerts[2:]]
    # One process starting over ends every claim at once.
    assert journal.release_claims() == 3
    assert len(journal.due("email", now_ns=NOW + 101, limit=10)) == 3


def test_outbox_keeps_at_most_500_characters_of_an_error(journal: Journal) -> None:
    journal.record_alerts([(alert_at(1), PLAN[:1])], now_ns=NOW)
    (email,) = journal.due("email", now_ns=NOW, limit=1)
    journal.mark_dead(email.id, "x" * 5000, now_ns=NOW)
    assert journal.deliveries()[0].last_error == "x" * 500


# -- SubscriberStore -----------------------------------------------------------------


SUBSCRIBER = Subscriber(
    id="web-1",
    email="a@example.com",
    push=("ntfy://ntfy.sh/x",),
    webpush=(WebPushSubscription(endpoint="https://push.example/1", p256dh="k", auth="a"),),
    webhook="https://hooks.example/1",
    webhook_secret="s3cret",
    symbols=("IWM",),
    kinds=("break_below",),
    confirmed=False,
)


def test_subscriber_store_keeps_every_field_and_removes_once(journal: Journal) -> None:
    journal.put_subscriber(SUBSCRIBER, now_ns=NOW)
    assert journal.subscribers() == [SUBSCRIBER]
    assert journal.remove_subscriber("web-1")
    assert not journal.remove_subscriber("web-1")
    assert journal.subscribers() == []


def test_subscriber_store_lists_pending_sign_ups_oldest_first_and_expires_them_by_age(
    journal: Journal,
) -> None:
    journal.put_subscriber(Subscriber(id="old", email="a@example.com", confirmed=False), now_ns=1)
    journal.put_subscriber(Subscriber(id="new", email="b@example.com", confirmed=False), now_ns=5)
    journal.put_subscriber(Subscriber(id="ok", email="c@example.com"), now_ns=0)
    assert [(s.id, created) for s, created in journal.pending_signups()] == [("old", 1), ("new", 5)]
    # Confirming keeps the sign-up time: a confirmed subscriber never expires.
    journal.put_subscriber(Subscriber(id="new", email="b@example.com"), now_ns=9)
    assert journal.expire_pending(before_ns=0) == []
    assert journal.expire_pending(before_ns=100) == ["old"]
    assert sorted(s.id for s in journal.subscribers()) == ["new", "ok"]


def test_subscriber_store_records_opt_outs_once(journal: Journal) -> None:
    assert journal.opted_out() == set()
    journal.opt_out("ops", now_ns=NOW)
    journal.opt_out("ops", now_ns=NOW + 1)
    journal.opt_out("desk", now_ns=NOW)
    assert journal.opted_out() == {"ops", "desk"}


# -- RuleStore -------------------------------------------------------------------------

RULE = StoredRule(
    id="sub_a:r1",
    owner="sub_a",
    definition={"symbol": "IWM", "condition": "cross_below", "level": 254.2, "frequency": "once"},
    created_ns=NOW,
    updated_ns=NOW,
)


def test_rule_store_keeps_every_field_replaces_by_id_and_removes_once(journal: Journal) -> None:
    operator = StoredRule(
        id="desk-1", owner=None, definition={"symbol": "SPX"}, created_ns=NOW + 1,
        updated_ns=NOW + 1,
    )  # fmt: skip
    journal.put_rule(operator)
    journal.put_rule(RULE)
    assert journal.stored_rules() == [RULE, operator]  # oldest first
    edited = dataclasses.replace(
        RULE, definition={**RULE.definition, "level": 250.0}, created_ns=NOW + 9, updated_ns=NOW + 5
    )
    journal.put_rule(edited)
    # Replaced, keeping when it was made.
    assert journal.stored_rules() == [dataclasses.replace(edited, created_ns=NOW), operator]
    assert journal.remove_rule(RULE.id)
    assert not journal.remove_rule(RULE.id)
    assert journal.stored_rules() == [operator]


def test_subscriber_store_keeps_the_generation_of_the_manage_link(journal: Journal) -> None:
    rotated = dataclasses.replace(SUBSCRIBER, manage_generation=3)
    journal.put_subscriber(rotated, now_ns=NOW)
    assert journal.subscribers()[0].manage_generation == 3


# -- Secrets and Probe ------------------------------------------------------------------


def test_secrets_are_32_bytes_made_once(journal: Journal) -> None:
    secret = journal.secret()
    assert len(secret) == 32
    assert journal.secret() == secret


def test_probe_passes_while_writes_are_taken_and_fails_while_they_are_not(
    implementation: Implementation, journal: Journal
) -> None:
    journal.check_writable(now_ns=NOW)
    implementation.refuse_writes(journal, True)
    with pytest.raises(JournalError, match="cannot be written"):
        journal.check_writable(now_ns=NOW)
    implementation.refuse_writes(journal, False)
    journal.check_writable(now_ns=NOW)


# -- Durability ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "durable",
    [i for i in IMPLEMENTATIONS if i.durable],
    ids=lambda implementation: implementation.name,
)
def test_a_durable_journal_keeps_everything_across_reopening(
    durable: Implementation, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    journal = durable.make(tmp_path, request)
    journal.open()
    journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    journal.put_subscriber(SUBSCRIBER, now_ns=NOW)
    journal.opt_out("ops", now_ns=NOW)
    journal.put_rule(RULE)
    checkpoint = Checkpoint(symbols={"IWM": "state"}, positions={"file": "f:3"})
    journal.record_alerts([], now_ns=NOW, checkpoint=checkpoint)
    secret = journal.secret()
    journal.close()
    again = durable.make(tmp_path, request)
    again.open()
    try:
        assert [row.status for row in again.deliveries()] == ["pending", "pending"]
        assert again.record_alerts([(alert_at(1), PLAN)], now_ns=NOW) == []
        assert again.subscribers() == [SUBSCRIBER]
        assert again.opted_out() == {"ops"}
        assert again.stored_rules() == [RULE]
        assert again.load_checkpoint() == checkpoint
        assert again.secret() == secret
    finally:
        again.close()


# -- Several workers on one outbox ---------------------------------------------------


@pytest.mark.parametrize(
    "shared",
    [i for i in IMPLEMENTATIONS if i.durable],
    ids=lambda implementation: implementation.name,
)
def test_workers_claiming_at_once_on_one_outbox_never_take_the_same_delivery(
    shared: Implementation, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four connections claim at the same moment, over and over: every row goes to one."""
    setup = shared.make(tmp_path, request)
    setup.open()
    count = 60
    setup.record_alerts([(alert_at(n), PLAN[:1]) for n in range(count)], now_ns=NOW)
    setup.close()
    workers = [shared.make(tmp_path, request) for _ in range(4)]
    start = threading.Barrier(len(workers))
    taken: list[list[int]] = [[] for _ in workers]

    def work(index: int) -> None:
        journal = workers[index]
        journal.open()  # in its own thread, as a worker process would hold its connection
        try:
            for _ in range(count):  # bounded: at most one round per row
                start.wait(timeout=10)
                rows = journal.claim("email", now_ns=NOW, limit=3, lease_ns=10**12)
                taken[index] += [row.id for row in rows]
        finally:
            journal.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [row for rows in taken for row in rows]
    assert sorted(everything) == sorted(set(everything))  # none taken twice
    assert len(everything) == count  # and every one taken
    assert sum(1 for rows in taken if rows) > 1  # more than one worker took some
