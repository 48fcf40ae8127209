"""The SQLite journal's own promises (the roles' contract is in tests/contract)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.errors import JournalError
from service.journal.records import Planned
from service.journal.sqlite import SCHEMA_VERSION, SqliteJournal
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
