"""The SQLite journal's own promises (the roles' contract is in tests/contract)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from service.errors import JournalError
from service.journal.records import Checkpoint, Planned, StoredRule
from service.journal.sqlite import SCHEMA_VERSION, SqliteJournal
from service.models import Viewer
from tests.builders import alert_at, at

NOW = at(0)
PLAN = [Planned("reader", "email", "reader@example.com")]


def test_a_journal_is_made_without_touching_its_file(tmp_path: Path) -> None:
    path = tmp_path / "var" / "alerts.db"
    journal = SqliteJournal(path)
    assert not path.parent.exists()
    journal.open()
    assert path.is_file()
    journal.close()


def test_the_file_is_kept_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "alerts.db")
    journal.open()
    assert journal.pragmas() == {"journal_mode": "wal", "synchronous": 2}  # 2: FULL
    db = sqlite3.connect(journal.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    journal.close()


def test_a_journal_of_a_newer_version_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalError, match="newer strykr-alerts"):
        SqliteJournal(path).open()


def test_a_journal_whose_directory_cannot_be_made_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(JournalError, match="cannot create its directory"):
        SqliteJournal(tmp_path / "file" / "alerts.db").open()


def test_a_journal_that_cannot_be_written_names_itself(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "alerts.db")
    journal.refuse_writes()
    with pytest.raises(JournalError, match=r"journal .*alerts\.db: cannot be written"):
        journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW)
    journal.close()


def test_a_journal_used_before_open_opens_itself(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "alerts.db")
    assert journal.record_alerts([(alert_at(1), PLAN)], now_ns=NOW) == [alert_at(1)]
    journal.close()
    journal.close()  # closing twice is harmless


VERSION_1 = """
CREATE TABLE alerts (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL, kind TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE deliveries (id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL REFERENCES alerts (id),
    subscriber TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ns INTEGER NOT NULL, last_error TEXT, updated_ns INTEGER NOT NULL,
    UNIQUE (alert_id, subscriber, channel, target));
CREATE TABLE subscribers (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ns INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE opt_outs (id TEXT PRIMARY KEY, at_ns INTEGER NOT NULL);
PRAGMA user_version = 1;
"""


def test_a_journal_of_version_1_is_migrated_and_keeps_what_it_held(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    db = sqlite3.connect(path)
    db.executescript(VERSION_1)
    alert = alert_at(1)
    db.execute(
        "INSERT INTO alerts (id, symbol, kind, ts_ns, recorded_ns, body) VALUES (?, ?, ?, ?, ?, ?)",
        (alert.id, alert.symbol, alert.kind, alert.ts_ns, NOW, json.dumps(alert.to_dict())),
    )
    db.commit()
    db.close()
    journal = SqliteJournal(path)
    journal.open()
    assert journal.recent_alerts() == [alert.to_dict()]
    assert journal.load_checkpoint() == Checkpoint()
    journal.record_alerts([], now_ns=NOW, checkpoint=Checkpoint(symbols={"IWM": "s"}))
    journal.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    db.close()


VERSION_2_ADDS = """
CREATE TABLE engine_state (symbol TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE positions (source TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE tick_log (seq INTEGER PRIMARY KEY, ticks TEXT NOT NULL);
PRAGMA user_version = 2;
"""


def test_a_journal_of_version_2_gets_rules_and_alert_owners_and_keeps_what_it_held(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.db"
    db = sqlite3.connect(path)
    db.executescript(VERSION_1 + VERSION_2_ADDS)
    alert = alert_at(1)
    db.execute(
        "INSERT INTO alerts (id, symbol, kind, ts_ns, recorded_ns, body) VALUES (?, ?, ?, ?, ?, ?)",
        (alert.id, alert.symbol, alert.kind, alert.ts_ns, NOW, json.dumps(alert.to_dict())),
    )
    # A subscriber stored before links to manage one's alerts existed.
    db.execute(
        "INSERT INTO subscribers (id, body, created_ns) VALUES (?, ?, ?)",
        (
            "sub_old",
            json.dumps(
                {
                    "id": "sub_old", "email": "a@example.com", "push": [], "webpush": [],
                    "webhook": None, "webhook_secret": None, "symbols": ["IWM"], "kinds": [],
                    "confirmed": True,
                }
            ),
            NOW,
        ),
    )  # fmt: skip
    db.execute("INSERT INTO engine_state VALUES ('IWM', 'state')")
    db.execute("INSERT INTO tick_log (ticks) VALUES ('logged before')")
    db.commit()
    db.close()
    journal = SqliteJournal(path)
    journal.open()
    # What it held, as it was; an alert of before has no owner: everyone may read it.
    assert journal.recent_alerts(viewer=Viewer(None)) == [alert.to_dict()]
    assert journal.load_checkpoint().symbols == {"IWM": "state"}
    # The log of before is the only engine's (scope ""), no shard's.
    assert journal.load_checkpoint().ticks == ("logged before",)
    assert journal.load_checkpoint("0/2").ticks == ()
    (old,) = journal.subscribers()
    assert (old.id, old.manage_generation) == ("sub_old", 0)
    assert journal.stored_rules() == []
    rule = StoredRule(
        id="r1", owner="sub_old", definition={"symbol": "IWM"}, created_ns=NOW, updated_ns=NOW
    )
    journal.put_rule(rule)
    owned = dataclasses.replace(alert_at(2), owner="sub_old")
    journal.record_alerts([(owned, [])], now_ns=NOW)
    journal.close()
    journal = SqliteJournal(path)  # opened again: migrated once, not twice
    journal.open()
    assert journal.stored_rules() == [rule]
    assert journal.recent_alerts(viewer=Viewer(None)) == [alert.to_dict()]
    assert journal.recent_alerts(viewer=Viewer("sub_old")) == [alert.to_dict(), owned.to_dict()]
    journal.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
