"""The SQLite journal: stored once, delivered once, retried, resumed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.delivery.journal import SqliteJournal
from service.delivery.subscribers import Planned, Subscriber, WebPushSubscription
from service.errors import JournalError, UnknownAlertError
from tests.helpers import alert_at, at

NOW = at(0)


PLAN = [Planned("reader", "email", "reader@example.com"), Planned("reader", "webhook", "http://h")]


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    return SqliteJournal(tmp_path / "var" / "alerts.db")


def test_journal_file_is_created_in_wal_mode_with_full_sync(journal: SqliteJournal) -> None:
    assert Path(journal.path).is_file()
    db = sqlite3.connect(journal.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()


def test_alert_recorded_twice_is_stored_and_planned_once(journal: SqliteJournal) -> None:
    alert = alert_at(1)
    assert journal.record_alerts([(alert, PLAN)], now_ns=NOW) == [alert]
    assert journal.record_alerts([(alert, PLAN), (alert_at(2), PLAN)], now_ns=NOW) == [alert_at(2)]
    assert journal.alert_count() == 2
    assert len(journal.deliveries(alert_id=alert.id)) == 2


def test_alert_and_deliveries_survive_reopening(tmp_path: Path) -> None:
    first = SqliteJournal(tmp_path / "alerts.db")
    first.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    first.close()
    again = SqliteJournal(tmp_path / "alerts.db")
    assert [row.status for row in again.deliveries()] == ["pending", "pending"]
    assert again.record_alerts([(alert_at(1), PLAN)], now_ns=NOW) == []


def test_due_rows_follow_sent_retry_and_dead(journal: SqliteJournal) -> None:
    journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    (email,) = journal.due("email", now_ns=NOW, limit=10)
    assert email.alert["id"] == alert_at(1).id
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


def test_alerts_after_since_are_those_recorded_later_for_the_symbols(
    journal: SqliteJournal,
) -> None:
    alerts = [alert_at(n, "IWM" if n % 2 else "SPX") for n in range(6)]
    journal.record_alerts([(alert, []) for alert in alerts], now_ns=NOW)
    after = journal.alerts_after(alerts[1].id, ["IWM"])
    assert [a["id"] for a in after] == [alerts[3].id, alerts[5].id]
    assert [a["id"] for a in journal.alerts_after(None, None)] == [a.id for a in alerts]
    assert len(journal.alerts_after(alerts[0].id, None, limit=2)) == 2
    with pytest.raises(UnknownAlertError):
        journal.alerts_after("nope", None)
    assert [a["id"] for a in journal.recent_alerts(symbol="SPX", limit=2)] == [
        alerts[2].id,
        alerts[4].id,
    ]


def test_subscribers_round_trip_and_secret_is_stable(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "alerts.db")
    subscriber = Subscriber(
        id="web-1",
        email="a@example.com",
        push=("ntfy://ntfy.sh/x",),
        webpush=(WebPushSubscription(endpoint="https://push.example/1", p256dh="k", auth="a"),),
        symbols=("IWM",),
        kinds=("break_below",),
        confirmed=False,
    )
    journal.put_subscriber(subscriber, now_ns=NOW)
    assert journal.subscribers() == [subscriber]
    secret = journal.secret()
    journal.close()
    again = SqliteJournal(tmp_path / "alerts.db")
    assert again.secret() == secret
    assert len(secret) == 32
    assert again.remove_subscriber("web-1")
    assert not again.remove_subscriber("web-1")
    assert again.subscribers() == []


def test_journal_of_a_newer_version_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalError, match="newer strykr-alerts"):
        SqliteJournal(path)


def test_journal_that_cannot_be_written_is_a_journal_error(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "alerts.db")
    journal._db.execute("PRAGMA query_only = ON")
    with pytest.raises(JournalError, match="cannot be written"):
        journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)


def test_pending_sign_ups_are_listed_oldest_first_and_expire_by_their_age(
    journal: SqliteJournal,
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
